"""The simplified SGD model on 2D landscapes (§III.E and Fig. 8 of the paper).

Each walker follows Eq. 10 of the paper,

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t,        Z_t ~ N(0, I₂),

on a landscape L given on a square grid. Units:

* **w-units** (positions): node (i, j) of the grid sits at
  ``x = x0 + j·h, y = y0 + i·h`` (row i = y, column j = x), so a grid of
  n × n nodes covers ``[x0, x0 + (n−1)h]²``. By default the landscape covers
  the unit square ``[0, 1]²`` (``extent = 1``, h = 1/(n−1); the paper's
  1025 × 1025 grid has h = 1/1024). See :data:`DEFAULT_EXTENT`.
* **loss units** (heights): as generated (the paper's diamond-square
  landscapes start with displacement amplitude 3).
* ∇L: central differences on the grid nodes (``numpy.gradient`` / MATLAB
  ``gradient`` convention, one-sided on the edges), in loss units per w-unit,
  bilinearly interpolated between nodes.
* time: t counts SGD iterations (steps); a trajectory of T iterations has
  T + 1 positions w_0 … w_T.

The noise term is η·σ·Z_t with Z_t standard normal, i.e. a Gaussian step of
standard deviation ησ per coordinate (the paper writes Z_t ~ N(0, σ) and
η σ Z_t; we read σ as the noise scale once, not twice).

A walker that steps outside the landscape is stopped: its position outside is
kept in the row of that step, later rows are NaN, and ``exit_step`` records
the step (-1 for walkers that stayed). Nothing is wrapped or clipped.

Random numbers (compiled walkers and the NumPy reference alike): a
counter-based SplitMix64 stream per walker, keyed by (seed, walker index),
turned into normals by Box–Muller (see ``cpp/toy.hpp``); the same seed gives
the same trajectories whatever the number of threads or the chunking.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

#: Side length of the landscape in w-units. With it the paper's parameters
#: (η = 0.02, σ = 0.01, 1000 iterations, 1025² diamond-square landscape of
#: amplitude 3) give the paper's picture: ballistic/jumpy descent with
#: superdiffusive MSD until the walker enters the final basin, subdiffusive
#: MSD inside it. See the module docstring of :mod:`anodiff.toy` and the report.
DEFAULT_EXTENT = 1.0
DEFAULT_SIZE = 1025
DEFAULT_ETA = 0.02
DEFAULT_SIGMA = 0.01
DEFAULT_ITERATIONS = 1000
DEFAULT_TRIALS = 10
LANDSCAPES = ("fractal", "random", "convex")
MIN_SIZE = 9

_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


# --------------------------------------------------------------------------- #
# Landscapes
# --------------------------------------------------------------------------- #

@dataclass
class Landscape:
    """A loss surface sampled on a grid.

    z[i, j] is the loss (loss units) at x = x0 + j·h, y = y0 + i·h (w-units).
    """

    z: np.ndarray
    h: float
    x0: float = 0.0
    y0: float = 0.0
    kind: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        z = np.ascontiguousarray(self.z, dtype=np.float64)
        if z.ndim != 2 or min(z.shape) < 2:
            raise InputError(f"landscape must be a 2-D grid of at least 2 x 2 nodes, got shape {z.shape}")
        if not np.all(np.isfinite(z)):
            raise InputError("landscape contains NaN or inf")
        if not (self.h > 0 and math.isfinite(self.h)):
            raise InputError(f"cell size h must be positive, got {self.h}")
        self.z = z
        self._grad = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) in w-units."""
        ny, nx = self.z.shape
        return (self.x0, self.x0 + (nx - 1) * self.h, self.y0, self.y0 + (ny - 1) * self.h)

    def gradient_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(gx, gy) = (∂L/∂x, ∂L/∂y) at the nodes, central differences (loss units per w-unit)."""
        if self._grad is None:
            from . import _core  # noqa: PLC0415
            from ._config import get_num_threads  # noqa: PLC0415

            gx = np.empty_like(self.z)
            gy = np.empty_like(self.z)
            _core.toy_gradient_grid(self.z, float(self.h), gx, gy, get_num_threads())
            self._grad = (gx, gy)
        return self._grad

    def contains(self, xy) -> np.ndarray:
        """True where the points (..., 2) lie inside the landscape (bounds included)."""
        xy = np.asarray(xy, dtype=np.float64)
        x_lo, x_hi, y_lo, y_hi = self.bounds
        return (xy[..., 0] >= x_lo) & (xy[..., 0] <= x_hi) & (xy[..., 1] >= y_lo) & (xy[..., 1] <= y_hi)

    def value(self, xy) -> np.ndarray:
        """Bilinear interpolation of L at points (..., 2); NaN outside the landscape or at NaN points."""
        return _bilinear(self.z, self.h, self.x0, self.y0, xy)

    def gradient(self, xy) -> np.ndarray:
        """Bilinearly interpolated central-difference gradient at points (..., 2) -> (..., 2)."""
        gx, gy = self.gradient_grid()
        return np.stack([_bilinear(gx, self.h, self.x0, self.y0, xy),
                         _bilinear(gy, self.h, self.x0, self.y0, xy)], axis=-1)


def _bilinear(f, h, x0, y0, xy):
    xy = np.asarray(xy, dtype=np.float64)
    ny, nx = f.shape
    u = (xy[..., 0] - x0) / h
    v = (xy[..., 1] - y0) / h
    inside = (u >= 0) & (u <= nx - 1) & (v >= 0) & (v <= ny - 1)
    u = np.where(inside, u, 0.0)
    v = np.where(inside, v, 0.0)
    j = np.minimum(u.astype(np.int64), nx - 2)
    i = np.minimum(v.astype(np.int64), ny - 2)
    fx = u - j
    fy = v - i
    top = f[i, j] + fx * (f[i, j + 1] - f[i, j])
    bot = f[i + 1, j] + fx * (f[i + 1, j + 1] - f[i + 1, j])
    out = top + fy * (bot - top)
    return np.where(inside, out, np.nan)


def _check_size(n, what="size") -> int:
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be an integer, got {n!r}") from None
    if n < MIN_SIZE:
        raise InputError(f"grid too small: {what} must be at least {MIN_SIZE} nodes per side, got {n}")
    return n


def _check_extent(extent) -> float:
    extent = float(extent)
    if not (extent > 0 and math.isfinite(extent)):
        raise InputError(f"extent must be a positive number of w-units, got {extent}")
    return extent


def spectral_fbm(n: int, hurst: float, seed: int = 0, amplitude: float = 1.0) -> np.ndarray:
    """Fractional Brownian surface of Hurst exponent H by spectral synthesis (n × n, float64).

    Fourier amplitudes |k|^{−(H+1)} (power spectrum ∝ |k|^{−(2H+2)}) with
    Gaussian random coefficients on a 2n × 2n periodic grid, of which one n × n
    quarter is kept (so the surface is not periodic). The variogram then grows
    as ⟨(z(r+Δ) − z(r))²⟩ ∝ |Δ|^{2H}; the surface has fractal dimension 3 − H.
    Returned with zero mean and standard deviation `amplitude` (loss units).
    """
    n = _check_size(n)
    hurst = float(hurst)
    if not 0.0 < hurst < 1.0:
        raise InputError(f"Hurst exponent must be in (0, 1), got {hurst}")
    if not amplitude > 0:
        raise InputError(f"amplitude must be positive, got {amplitude}")
    m = 2 * n
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(m)[:, None]
    kx = np.fft.rfftfreq(m)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amp = k ** (-(hurst + 1.0))
    amp[0, 0] = 0.0
    coef = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
    surf = np.fft.irfft2(coef, s=(m, m))[:n, :n]
    surf -= surf.mean()
    surf *= amplitude / surf.std()
    return np.ascontiguousarray(surf)


def diamond_square(n: int = DEFAULT_SIZE, roughness: float = 0.5, amplitude: float = 3.0,
                   seed: int = 0) -> np.ndarray:
    """Midpoint-displacement (diamond-square) surface, n × n with n = 2^k + 1 (float64, loss units).

    The four corners start at 0. At level ℓ = 0, 1, … every new node gets the
    mean of its 4 (diamond step: square centres) or 3–4 (square step: edge
    midpoints) parents plus a uniform displacement in [−a_ℓ, a_ℓ], with
    a_0 = `amplitude` and a_{ℓ+1} = `roughness` · a_ℓ. The paper's landscapes
    use amplitude 3 halved at each level (roughness 0.5); the statistical
    Hurst exponent is H = −log2(roughness).
    """
    n = _check_size(n)
    k = int(round(math.log2(n - 1)))
    if 2 ** k + 1 != n:
        raise InputError(f"diamond-square needs a size 2^k + 1 (e.g. 513, 1025), got {n}")
    roughness = float(roughness)
    if not 0.0 < roughness < 1.0:
        raise InputError(f"roughness must be in (0, 1), got {roughness}")
    if not amplitude > 0:
        raise InputError(f"amplitude must be positive, got {amplitude}")
    rng = np.random.default_rng(seed)
    z = np.zeros((n, n), dtype=np.float64)
    a = float(amplitude)
    step = n - 1
    while step > 1:
        half = step // 2
        # Diamond step: centres of the squares of side `step`.
        c = (z[0:-1:step, 0:-1:step] + z[0:-1:step, step::step]
             + z[step::step, 0:-1:step] + z[step::step, step::step]) / 4.0
        z[half::step, half::step] = c + rng.uniform(-a, a, c.shape)
        # Square step: edge midpoints, averaged over their 3 or 4 neighbours.
        for r0, c0 in ((0, half), (half, 0)):
            rows = np.arange(r0, n, step)
            cols = np.arange(c0, n, step)
            acc = np.zeros((rows.size, cols.size))
            cnt = np.zeros((rows.size, cols.size))
            for dr, dc in ((-half, 0), (half, 0), (0, -half), (0, half)):
                rr = rows[:, None] + dr
                cc = cols[None, :] + dc
                ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
                acc += np.where(ok, z[np.clip(rr, 0, n - 1), np.clip(cc, 0, n - 1)], 0.0)
                cnt += ok
            z[np.ix_(rows, cols)] = acc / cnt + rng.uniform(-a, a, acc.shape)
        a *= roughness
        step = half
    return z


def wide_minimum(z: np.ndarray, depth: float = 0.05) -> tuple[float, np.ndarray]:
    """Area of the global minimum's basin: (fraction of the grid, boolean mask).

    The basin is the 8-connected component holding the global minimum of the
    sublevel set {z ≤ min z + depth · (max z − min z)}: the region "above its
    floor" within a height `depth` (fraction of the landscape's height range).
    """
    from scipy import ndimage  # noqa: PLC0415

    z = np.asarray(z, dtype=np.float64)
    zmin, zmax = float(z.min()), float(z.max())
    level = zmin + depth * (zmax - zmin)
    labels, _ = ndimage.label(z <= level, structure=np.ones((3, 3), dtype=bool))
    lab = labels.flat[int(np.argmin(z))]
    mask = labels == lab
    return float(mask.mean()), mask


def fractal_landscape(n: int = DEFAULT_SIZE, seed: int = 0, *, method: str = "diamond-square",
                      roughness: float = 0.5, hurst: float | None = None, amplitude: float = 3.0,
                      extent: float = DEFAULT_EXTENT, select: bool = True, min_area: float = 0.02,
                      depth: float = 0.05, max_tries: int = 100) -> Landscape:
    """A fractal landscape holding a wide minimum, as in the paper.

    ``method="diamond-square"`` (the paper's: amplitude 3, roughness 0.5 per
    level, n = 2^k + 1) or ``"spectral"`` (fractional Brownian surface with
    Hurst exponent `hurst`, default 0.8, standard deviation `amplitude`/3 so
    both methods have a similar height scale). With ``select=True`` the seeds
    seed, seed+1, … are tried until the global minimum's basin (see
    :func:`wide_minimum`, height `depth` of the range) covers at least
    `min_area` of the grid; the seed used is in ``params["seed_used"]``.
    """
    n = _check_size(n)
    extent = _check_extent(extent)
    if method not in ("diamond-square", "spectral"):
        raise InputError(f"unknown fractal method {method!r} (use 'diamond-square' or 'spectral')")
    if not 0.0 <= min_area < 1.0:
        raise InputError(f"min_area must be in [0, 1), got {min_area}")
    if hurst is None:
        hurst = 0.8 if method == "spectral" else -math.log2(roughness) if 0 < roughness < 1 else 1.0
    tries = max(1, int(max_tries)) if select else 1
    best = None
    for k in range(tries):
        s = int(seed) + k
        if method == "diamond-square":
            z = diamond_square(n, roughness=roughness, amplitude=amplitude, seed=s)
        else:
            z = spectral_fbm(n, hurst, seed=s, amplitude=amplitude / 3.0)
        area, _ = wide_minimum(z, depth)
        if best is None or area > best[0]:
            best = (area, s, z)
        if not select or area >= min_area:
            break
    area, s, z = best
    if select and area < min_area:
        raise InputError(f"no landscape with a wide minimum (basin area >= {min_area}) among seeds "
                         f"{seed}..{seed + tries - 1}; largest was {area:.4f}")
    z = z - z.min()
    params = {"method": method, "seed": int(seed), "seed_used": s, "n": n, "extent": extent,
              "amplitude": float(amplitude), "roughness": float(roughness), "hurst": float(hurst),
              "wide_min_area": area, "wide_min_depth": float(depth), "min_area": float(min_area)}
    return Landscape(z, h=extent / (n - 1), kind="fractal", params=params)


def random_landscape(fractal: Landscape, seed: int = 0, smooth: float = 8.0) -> Landscape:
    """The paper's "random" landscape: the fractal's values shuffled, then Gaussian-filtered.

    A uniform random permutation of the values of `fractal` (seeded) is
    smoothed by a Gaussian filter of standard deviation `smooth` cells
    (``scipy.ndimage.gaussian_filter``, mode "reflect"), which makes it at
    least once differentiable. Same grid and units as `fractal`.
    """
    from scipy import ndimage  # noqa: PLC0415

    if not smooth > 0:
        raise InputError(f"smoothing width must be positive (cells), got {smooth}")
    rng = np.random.default_rng(seed)
    z = rng.permutation(fractal.z.ravel()).reshape(fractal.z.shape)
    z = ndimage.gaussian_filter(z, sigma=float(smooth), mode="reflect")
    params = dict(fractal.params, shuffle_seed=int(seed), smooth_cells=float(smooth))
    return Landscape(z - z.min(), h=fractal.h, x0=fractal.x0, y0=fractal.y0, kind="random", params=params)


def convex_landscape(n: int = DEFAULT_SIZE, extent: float = DEFAULT_EXTENT,
                     curvature: float = 0.5) -> Landscape:
    """Convex paraboloid L(w) = ½ κ |w − c|² centred in the square (loss units; κ = `curvature`).

    κ is in loss units per w-unit². With η = 0.02 the deterministic part
    contracts w − c by the factor 1 − ηκ per step, i.e. a relaxation time of
    1/(ηκ) = 100 steps for κ = 0.5: motion is ballistic (α ≈ 2) at lags well
    below that.
    """
    n = _check_size(n)
    extent = _check_extent(extent)
    if not curvature > 0:
        raise InputError(f"curvature must be positive, got {curvature}")
    h = extent / (n - 1)
    c = extent / 2.0
    x = np.arange(n) * h - c
    z = 0.5 * curvature * (x[None, :] ** 2 + x[:, None] ** 2)
    return Landscape(z, h=h, kind="convex", params={"n": n, "extent": extent, "curvature": float(curvature)})


def make_landscape(kind: str, n: int = DEFAULT_SIZE, seed: int = 0, **kw) -> Landscape:
    """'fractal', 'random' (from the fractal of the same seed) or 'convex'; keywords go to the generator."""
    if kind == "fractal":
        return fractal_landscape(n, seed, **kw)
    if kind == "random":
        smooth = kw.pop("smooth", 8.0)
        return random_landscape(fractal_landscape(n, seed, **kw), seed=seed, smooth=smooth)
    if kind == "convex":
        return convex_landscape(n, **{k: v for k, v in kw.items() if k in ("extent", "curvature")})
    raise InputError(f"unknown landscape {kind!r} (use one of {', '.join(LANDSCAPES)})")


# --------------------------------------------------------------------------- #
# Walkers
# --------------------------------------------------------------------------- #

@dataclass
class Walks:
    """Trajectories of independent walkers on one landscape.

    traj (n, T+1, 2) float64 w-units (NaN after a walker left), grads
    (n, T, 2) float64 loss units per w-unit (∇L used at step t; NaN once
    stopped) or None, exit_step (n,) int64 (row at which the walker was first
    outside, -1 if it stayed).
    """

    traj: np.ndarray
    grads: np.ndarray | None
    exit_step: np.ndarray
    eta: float
    sigma: float
    seed: int

    @property
    def left(self) -> np.ndarray:
        """(n,) bool: the walker left the landscape and was stopped."""
        return self.exit_step >= 0

    @property
    def n_walkers(self) -> int:
        return self.traj.shape[0]

    @property
    def iterations(self) -> int:
        return self.traj.shape[1] - 1


def _check_walk_params(eta, sigma, iterations):
    try:
        eta, sigma = float(eta), float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"eta and sigma must be numbers, got {eta!r}, {sigma!r}") from None
    if not (eta > 0 and math.isfinite(eta)):
        raise InputError(f"learning rate eta must be > 0, got {eta}")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise InputError(f"noise sigma must be >= 0, got {sigma}")
    if int(iterations) < 1:
        raise InputError(f"iterations must be >= 1, got {iterations}")
    return eta, sigma, int(iterations)


def _check_starts(landscape: Landscape, starts) -> np.ndarray:
    starts = np.ascontiguousarray(np.asarray(starts, dtype=np.float64).reshape(-1, 2))
    if starts.shape[0] < 1:
        raise InputError("need at least one walker")
    bad = ~landscape.contains(starts)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        x_lo, x_hi, y_lo, y_hi = landscape.bounds
        raise InputError(f"start {k} at {tuple(starts[k])} lies outside the landscape "
                         f"[{x_lo:g}, {x_hi:g}] x [{y_lo:g}, {y_hi:g}]")
    return starts


def start_positions(landscape: Landscape, n: int, seed: int = 0, quantile: float = 0.8,
                    margin: float = 0.1) -> np.ndarray:
    """(n, 2) random start points at "high altitude", as in the paper.

    Nodes are drawn uniformly (seeded) among those whose loss is at least the
    `quantile` of all values and that lie at least `margin` (fraction of the
    side) away from the edges.
    """
    if not 0 <= quantile < 1:
        raise InputError(f"start quantile must be in [0, 1), got {quantile}")
    if not 0 <= margin < 0.5:
        raise InputError(f"start margin must be in [0, 0.5), got {margin}")
    ny, nx = landscape.shape
    mi, mj = int(margin * (ny - 1)), int(margin * (nx - 1))
    inner = landscape.z[mi:ny - mi, mj:nx - mj]
    ii, jj = np.nonzero(inner >= np.quantile(inner, quantile))
    rng = np.random.default_rng([int(seed), 0x5747])
    pick = rng.integers(0, ii.size, int(n))
    x = landscape.x0 + (jj[pick] + mj) * landscape.h
    y = landscape.y0 + (ii[pick] + mi) * landscape.h
    return np.stack([x, y], axis=1)


def walk(landscape: Landscape, starts, iterations: int = DEFAULT_ITERATIONS, eta: float = DEFAULT_ETA,
         sigma: float = DEFAULT_SIGMA, seed: int = 0, *, record_grads: bool = True,
         walker_offset: int = 0, chunk: int = 4096, progress: bool = False) -> Walks:
    """Run independent SGD walkers (compiled, threaded, GIL released).

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t with Z_t ~ N(0, I₂) from walker
    (walker_offset + k)'s counter-based stream under `seed`. `starts` is
    (n, 2) in w-units. Walkers run in chunks of `chunk` (a progress bar with
    ``progress=True``); results do not depend on chunking or thread count.
    """
    from . import _core  # noqa: PLC0415
    from ._config import get_num_threads  # noqa: PLC0415

    eta, sigma, iterations = _check_walk_params(eta, sigma, iterations)
    starts = _check_starts(landscape, starts)
    n = starts.shape[0]
    gx, gy = landscape.gradient_grid()
    traj = np.empty((n, iterations + 1, 2), dtype=np.float64)
    grads = np.empty((n, iterations, 2), dtype=np.float64) if record_grads else None
    exit_step = np.empty(n, dtype=np.int64)
    seed64 = int(seed) & _MASK64
    chunk = max(1, int(chunk))
    bounds = list(range(0, n, chunk)) + [n]
    pieces = zip(bounds[:-1], bounds[1:])
    if progress and len(bounds) > 2:
        from tqdm.auto import tqdm  # noqa: PLC0415

        pieces = tqdm(list(pieces), desc="toy walkers", unit="chunk")
    threads = get_num_threads()
    for a, b in pieces:
        _core.toy_walk(gx, gy, float(landscape.h), float(landscape.x0), float(landscape.y0), starts[a:b],
                       iterations, eta, sigma, seed64, int(walker_offset) + a, traj[a:b],
                       None if grads is None else grads[a:b], exit_step[a:b], threads)
    return Walks(traj=traj, grads=grads, exit_step=exit_step, eta=eta, sigma=sigma, seed=int(seed))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def normal_pairs(seed: int, walkers, t) -> np.ndarray:
    """The walkers' N(0, I₂) draws at step t: (len(walkers), 2), NumPy twin of ``cpp/toy.hpp``.

    key_k = splitmix64(seed ^ splitmix64(k + 1)); word n = splitmix64(key + (n+1)·γ)
    with γ = 0x9E3779B97F4A7C15; step t uses words 2t, 2t+1 → u = (word >> 11 + 1)/2⁵³,
    then Box–Muller: r = √(−2 ln u₁), (r cos 2πu₂, r sin 2πu₂).
    """
    with np.errstate(over="ignore"):
        k = np.asarray(walkers, dtype=np.uint64)
        key = _splitmix64(_U64(int(seed) & _MASK64) ^ _splitmix64(k + _U64(1)))
        out = []
        for n in (2 * int(t), 2 * int(t) + 1):
            word = _splitmix64(key + _U64(((n + 1) * _GOLDEN) & _MASK64))
            out.append(((word >> _U64(11)).astype(np.float64) + 1.0) * (1.0 / 9007199254740992.0))
    r = np.sqrt(-2.0 * np.log(out[0]))
    a = 2.0 * np.pi * out[1]
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def walk_numpy(landscape: Landscape, starts, iterations: int = DEFAULT_ITERATIONS, eta: float = DEFAULT_ETA,
               sigma: float = DEFAULT_SIGMA, seed: int = 0, *, walker_offset: int = 0) -> Walks:
    """Straightforward NumPy loop over steps (vectorised over walkers), float64: the reference.

    Same model, gradient (``numpy.gradient`` + bilinear interpolation), random
    stream and stopping rule as :func:`walk`.
    """
    eta, sigma, iterations = _check_walk_params(eta, sigma, iterations)
    starts = _check_starts(landscape, starts)
    n = starts.shape[0]
    gy, gx = np.gradient(landscape.z, landscape.h)
    traj = np.full((n, iterations + 1, 2), np.nan)
    grads = np.full((n, iterations, 2), np.nan)
    exit_step = np.full(n, -1, dtype=np.int64)
    ids = np.arange(n, dtype=np.uint64) + np.uint64(walker_offset)
    w = starts.copy()
    traj[:, 0] = w
    active = np.ones(n, dtype=bool)
    for t in range(iterations):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        p = w[idx]
        g = np.stack([_bilinear(gx, landscape.h, landscape.x0, landscape.y0, p),
                      _bilinear(gy, landscape.h, landscape.x0, landscape.y0, p)], axis=1)
        noise = normal_pairs(seed, ids[idx], t)
        p = p - eta * g + eta * sigma * noise
        w[idx] = p
        traj[idx, t + 1] = p
        grads[idx, t] = g
        out = ~landscape.contains(p)
        exit_step[idx[out]] = t + 1
        active[idx[out]] = False
    return Walks(traj=traj, grads=grads, exit_step=exit_step, eta=eta, sigma=sigma, seed=int(seed))
