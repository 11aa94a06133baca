"""The simplified SGD model on 2D landscapes (§III.E and Fig. 8 of the paper).

Each walker follows Eq. 10 of the paper,

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t,        Z_t ~ N(0, I₂),

on a landscape L given on a square grid. Units:

* **w-units** (positions): node (i, j) of the grid sits at
  ``x = x0 + j·h, y = y0 + i·h`` (row i = y, column j = x), so a grid of
  n × n nodes covers ``[x0, x0 + (n−1)h]²``. By default the landscape covers
  ``[0, 4]²`` (``extent = 4``, h = 4/(n−1); on the paper's 1025 × 1025 grid
  h = 1/256). Why 4: see :data:`DEFAULT_EXTENT`.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

#: Side length of the landscape in w-units (h = extent / (n − 1)). Only
#: η/extent² matters for the deterministic part of the walk (rescaling w by E
#: rescales ∇L by 1/E), so this fixes the regime for the paper's η. With 4:
#: at η = 0.02 gradient descent is chaotic on the finest cells (it jumps out
#: of narrow minima) yet settles in wide basins, and most walkers stay on the
#: landscape; with extent ≤ 3 most walkers leave or never settle, with
#: extent ≥ 6 they freeze in the first narrow minimum.
DEFAULT_EXTENT = 4.0
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

            g = np.empty(self.z.shape + (2,), dtype=np.float64)
            _core.toy_gradient_grid(self.z, float(self.h), g, get_num_threads())
            self._grad = g
        return self._grad[..., 0], self._grad[..., 1]

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


def wide_minimum(z: np.ndarray, depth: float = 0.1) -> tuple[float, np.ndarray]:
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


def catchment(z: np.ndarray, smooth: float = 16.0) -> np.ndarray:
    """Coarse basin of attraction of the global minimum: boolean mask (ny, nx).

    Nodes whose steepest descent (see :func:`basin_labels`) on the landscape
    smoothed by a Gaussian of standard deviation `smooth` cells ends in the
    basin that holds the global minimum of z. Fine-scale minima are ignored, so
    this is the region from which large-scale descent leads to the wide minimum.
    """
    from scipy import ndimage  # noqa: PLC0415

    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    if smooth <= 0:
        lab = basin_labels(z)
        return lab == lab.flat[int(np.argmin(z))]
    zs = ndimage.gaussian_filter(z, float(smooth), mode="nearest")
    # The smoothed field varies on `smooth` cells: label it on a grid 4x coarser than that.
    f = max(1, int(smooth // 4))
    lab = basin_labels(zs[::f, ::f])
    i, j = np.unravel_index(int(np.argmin(z)), z.shape)
    coarse = lab == lab[int(round(i / f)) if int(round(i / f)) < lab.shape[0] else -1,
                        int(round(j / f)) if int(round(j / f)) < lab.shape[1] else -1]
    ii = np.minimum(np.rint(np.arange(ny) / f).astype(np.int64), lab.shape[0] - 1)
    jj = np.minimum(np.rint(np.arange(nx) / f).astype(np.int64), lab.shape[1] - 1)
    return coarse[np.ix_(ii, jj)]


def fractal_landscape(n: int = DEFAULT_SIZE, seed: int = 0, *, method: str = "diamond-square",
                      roughness: float = 0.5, hurst: float | None = None, amplitude: float = 3.0,
                      extent: float = DEFAULT_EXTENT, select: bool = True, min_area: float = 0.01,
                      depth: float = 0.1, min_catchment: float = 0.1, catchment_smooth: float = 16.0,
                      max_tries: int = 200) -> Landscape:
    """A fractal landscape holding a wide minimum, as in the paper.

    ``method="diamond-square"`` (the paper's: amplitude 3, roughness 0.5 per
    level, n = 2^k + 1) or ``"spectral"`` (fractional Brownian surface with
    Hurst exponent `hurst`, default 0.8, standard deviation `amplitude`/3 so
    both methods have a similar height scale). With ``select=True`` the seeds
    seed, seed+1, … are tried until the global minimum's basin (see
    :func:`wide_minimum`, height `depth` of the range) covers at least
    `min_area` of the grid and its coarse catchment (:func:`catchment`,
    Gaussian smoothing `catchment_smooth` cells) covers at least
    `min_catchment`: a wide minimum reached by large-scale descent from a large
    part of the landscape. The seed used is in ``params["seed_used"]``.
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
        catch = float(catchment(z, catchment_smooth).mean()) if (select or k == 0) else 0.0
        score = min(area / max(min_area, 1e-12), catch / max(min_catchment, 1e-12))
        if best is None or score > best[0]:
            best = (score, s, z, area, catch)
        if not select or (area >= min_area and catch >= min_catchment):
            break
    _, s, z, area, catch = best
    if select and not (area >= min_area and catch >= min_catchment):  # pragma: no cover
        raise InputError(f"no landscape with a wide minimum (basin area >= {min_area}, catchment >= "
                         f"{min_catchment}) among seeds {seed}..{seed + tries - 1}")
    z = z - z.min()
    params = {"method": method, "seed": int(seed), "seed_used": s, "n": n, "extent": extent,
              "amplitude": float(amplitude), "roughness": float(roughness), "hurst": float(hurst),
              "wide_min_area": area, "wide_min_depth": float(depth), "min_area": float(min_area),
              "catchment_area": catch, "min_catchment": float(min_catchment),
              "catchment_smooth": float(catchment_smooth)}
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
    outside, -1 if it stayed), loss (n, T+1) L(w_t) in loss units (bilinear,
    NaN outside) or None.
    """

    traj: np.ndarray
    grads: np.ndarray | None
    exit_step: np.ndarray
    eta: float
    sigma: float
    seed: int
    loss: np.ndarray | None = None  # (n, T+1) L(w_t), loss units, NaN outside / after leaving

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
                    margin: float = 0.1, region: np.ndarray | None = None) -> np.ndarray:
    """(n, 2) random start points at "high altitude", as in the paper.

    Nodes are drawn uniformly (seeded) among those that lie at least `margin`
    (fraction of the side) away from the edges, inside `region` (boolean mask
    of the grid, e.g. :func:`catchment`; default everywhere), and whose loss
    is at least the `quantile` of all values of the landscape (if fewer than 10
    nodes qualify: the `quantile` of the candidate nodes' values).
    """
    if not 0 <= quantile < 1:
        raise InputError(f"start quantile must be in [0, 1), got {quantile}")
    if not 0 <= margin < 0.5:
        raise InputError(f"start margin must be in [0, 0.5), got {margin}")
    ny, nx = landscape.shape
    mi, mj = int(margin * (ny - 1)), int(margin * (nx - 1))
    cand = np.zeros((ny, nx), dtype=bool)
    cand[mi:ny - mi, mj:nx - mj] = True
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != (ny, nx):
            raise InputError(f"start region must have the grid's shape {(ny, nx)}, got {region.shape}")
        if (cand & region).any():
            cand &= region
    z = landscape.z
    ii, jj = np.nonzero(cand & (z >= np.quantile(z, quantile)))
    if ii.size < 10:
        ii, jj = np.nonzero(cand & (z >= np.quantile(z[cand], quantile)))
    rng = np.random.default_rng([int(seed), 0x5747])
    pick = rng.integers(0, ii.size, int(n))
    x = landscape.x0 + jj[pick] * landscape.h
    y = landscape.y0 + ii[pick] * landscape.h
    return np.stack([x, y], axis=1)


def walk(landscape: Landscape, starts, iterations: int = DEFAULT_ITERATIONS, eta: float = DEFAULT_ETA,
         sigma: float = DEFAULT_SIGMA, seed: int = 0, *, record_grads: bool = True, record_loss: bool = True,
         walker_offset: int = 0, chunk: int = 4096, progress: bool = False) -> Walks:
    """Run independent SGD walkers (compiled, threaded, GIL released).

    w_{t+1} = w_t − η ∇L(w_t) + η σ Z_t with Z_t ~ N(0, I₂) from walker
    (walker_offset + k)'s counter-based stream under `seed`. `starts` is
    (n, 2) in w-units. Walkers run in chunks of `chunk` (a progress bar with
    ``progress=True``); results do not depend on chunking or thread count.
    `record_grads` / `record_loss` keep ∇L(w_t) and L(w_t) of every step.
    """
    from . import _core  # noqa: PLC0415
    from ._config import get_num_threads  # noqa: PLC0415

    eta, sigma, iterations = _check_walk_params(eta, sigma, iterations)
    starts = _check_starts(landscape, starts)
    n = starts.shape[0]
    landscape.gradient_grid()
    grad = landscape._grad  # (ny, nx, 2) interleaved
    traj = np.empty((n, iterations + 1, 2), dtype=np.float64)
    grads = np.empty((n, iterations, 2), dtype=np.float64) if record_grads else None
    exit_step = np.empty(n, dtype=np.int64)
    loss = np.empty((n, iterations + 1), dtype=np.float64) if record_loss else None
    seed64 = int(seed) & _MASK64
    chunk = max(1, int(chunk))
    bounds = list(range(0, n, chunk)) + [n]
    pieces = zip(bounds[:-1], bounds[1:])
    if progress and len(bounds) > 2:
        from tqdm.auto import tqdm  # noqa: PLC0415

        pieces = tqdm(list(pieces), desc="toy walkers", unit="chunk")
    threads = get_num_threads()
    for a, b in pieces:
        _core.toy_walk(grad, landscape.z, float(landscape.h), float(landscape.x0), float(landscape.y0),
                       starts[a:b], iterations, eta, sigma, seed64, int(walker_offset) + a, traj[a:b],
                       None if grads is None else grads[a:b], None if loss is None else loss[a:b],
                       exit_step[a:b], threads)
    return Walks(traj=traj, grads=grads, exit_step=exit_step, eta=eta, sigma=sigma, seed=int(seed), loss=loss)


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


# --------------------------------------------------------------------------- #
# Analysis
# --------------------------------------------------------------------------- #

def loss_along(landscape: Landscape, traj: np.ndarray) -> np.ndarray:
    """L(w_t) for every row of traj (..., T+1, 2) -> (..., T+1), loss units; NaN outside / after leaving."""
    return landscape.value(traj)


def basin_entry(loss: np.ndarray, tol: float) -> np.ndarray:
    """Per walker, the step t0 at which it entered its final basin (int64, -1 if undefined).

    L_end is the median loss over the last 5 % of the steps (at least 1); t0 is
    the first step from which the loss stays ≤ L_end + tol until the end, so the
    walker stays in one connected region of the sublevel set {L ≤ L_end + tol}
    (its final basin). `tol` is in loss units. Walkers with NaN (left the
    landscape) get -1.
    """
    loss = np.atleast_2d(np.asarray(loss, dtype=np.float64))
    n, m = loss.shape
    tail = max(1, int(round(0.05 * m)))
    out = np.full(n, -1, dtype=np.int64)
    ok = np.all(np.isfinite(loss), axis=1)
    if not ok.any():
        return out
    lv = loss[ok]
    l_end = np.median(lv[:, m - tail:], axis=1)
    above = lv > (l_end + tol)[:, None]
    # last row above the threshold; t0 = that + 1 (0 if never above)
    any_above = above.any(axis=1)
    last = m - 1 - np.argmax(above[:, ::-1], axis=1)
    out[ok] = np.where(any_above, last + 1, 0)
    return out


def trial_msd(traj: np.ndarray, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Trial-averaged time-averaged MSD over rows [start, stop) of walkers that stay on the landscape.

    MSD(τ) = (1/n) Σ_k 1/(m−τ) Σ_t |w_k(t+τ) − w_k(t)|² for the n walkers whose
    rows in the window are all finite (m = stop − start rows), computed by
    :func:`anodiff.msd` on the walkers stacked as 2n dimensions and divided by
    n. Returns (lags in steps, msd in w-units², n).
    """
    from .msd import msd as _msd  # noqa: PLC0415

    traj = np.asarray(traj, dtype=np.float64)
    stop = traj.shape[1] if stop is None else int(stop)
    seg = traj[:, int(start):stop]
    ok = np.all(np.isfinite(seg), axis=(1, 2))
    n = int(ok.sum())
    if n == 0:
        raise InputError("no walker stayed on the landscape during the window")
    if seg.shape[1] < 2:
        raise InputError(f"window [{start}, {stop}) has fewer than 2 rows")
    W = np.ascontiguousarray(seg[ok].transpose(1, 0, 2).reshape(seg.shape[1], 2 * n))
    lags, m = _msd(W)
    return lags, m / n, n


def pooled_msd(traj: np.ndarray, starts, stops) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MSD pooled over walkers, each over its own window of rows [starts[k], stops[k]).

    MSD(τ) = Σ_k Σ_{t} |w_k(t+τ) − w_k(t)|² / Σ_k (m_k − τ), the sums over the
    walkers whose window has m_k > τ rows (all finite). Walkers sharing a
    window are stacked as dimensions of one :func:`anodiff.msd` call.
    Returns (lags 1…max m_k − 1 in steps, msd in w-units², count(τ) = number
    of walkers contributing at each lag). Walkers with windows of < 2 rows or
    with NaN in their window are skipped.
    """
    from .msd import msd as _msd  # noqa: PLC0415

    traj = np.asarray(traj, dtype=np.float64)
    starts = np.broadcast_to(np.asarray(starts, dtype=np.int64), traj.shape[:1])
    stops = np.broadcast_to(np.asarray(stops, dtype=np.int64), traj.shape[:1])
    finite_rows = np.all(np.isfinite(traj), axis=2)
    groups: dict[tuple[int, int], list[int]] = {}
    rows = traj.shape[1]
    for k in range(traj.shape[0]):
        a, b = max(0, int(starts[k])), min(rows, int(stops[k]))
        if b - a >= 2 and finite_rows[k, a:b].all():
            groups.setdefault((a, b), []).append(k)
    if not groups:
        raise InputError("no walker has a complete window of at least 2 rows")
    mmax = max(b - a for a, b in groups)
    sums = np.zeros(mmax - 1)
    pairs = np.zeros(mmax - 1)
    count = np.zeros(mmax - 1, dtype=np.int64)
    for (a, b), ks in groups.items():
        m = b - a
        W = np.ascontiguousarray(traj[ks, a:b].transpose(1, 0, 2).reshape(m, 2 * len(ks)))
        lags, curve = _msd(W)
        sums[: m - 1] += curve * (m - lags)   # Σ over walkers of Σ_t |Δ|²
        pairs[: m - 1] += len(ks) * (m - lags)
        count[: m - 1] += len(ks)
    return np.arange(1, mmax, dtype=np.int64), sums / pairs, count


def basin_labels(z: np.ndarray) -> np.ndarray:
    """Steepest-descent basin of every node: (ny, nx) int64, the flat index of the local minimum it drains to.

    Each node points to the lowest of itself and its 8 neighbours; following
    the pointers (by pointer jumping) ends at a local minimum of the grid.
    """
    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    pad = np.pad(z, 1, constant_values=np.inf)
    idx = np.arange(ny * nx, dtype=np.int64).reshape(ny, nx)
    best = z.copy()
    parent = idx.copy()
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            nb = pad[1 + di:1 + di + ny, 1 + dj:1 + dj + nx]
            better = nb < best
            best = np.where(better, nb, best)
            parent = np.where(better, idx + di * nx + dj, parent)
    parent = parent.ravel()
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    return parent.reshape(ny, nx)


@dataclass
class EscapeEvents:
    """Escapes from local minima (Fig. 8d): a walker that spent ≥ `dwell` steps in the
    steepest-descent basin of one local minimum moves to another basin.

    walker, step (the row of the first position outside the basin), minimum_xy
    (w-units) and minimum_loss (loss units) of the basin left, jump (w-units,
    |w(step) − w(step−1)|), and step_lengths (n_events, 2K+1): |w(t+1) − w(t)|
    for t = step−1+offsets, offsets = −K…K (NaN beyond the trajectory).
    """

    walker: np.ndarray
    step: np.ndarray
    minimum_xy: np.ndarray
    minimum_loss: np.ndarray
    jump: np.ndarray
    offsets: np.ndarray
    step_lengths: np.ndarray
    dwell: int


def escape_events(landscape: Landscape, traj: np.ndarray, dwell: int = 5, window: int = 10,
                  labels: np.ndarray | None = None) -> EscapeEvents:
    """Find escapes from local minima in trajectories (n, T+1, 2); see :class:`EscapeEvents`."""
    traj = np.asarray(traj, dtype=np.float64)
    if labels is None:
        labels = basin_labels(landscape.z)
    ny, nx = landscape.shape
    n, rows, _ = traj.shape
    ok = np.all(np.isfinite(traj), axis=2) & landscape.contains(traj)
    j = np.clip(np.rint((np.nan_to_num(traj[..., 0]) - landscape.x0) / landscape.h), 0, nx - 1).astype(np.int64)
    i = np.clip(np.rint((np.nan_to_num(traj[..., 1]) - landscape.y0) / landscape.h), 0, ny - 1).astype(np.int64)
    lab = np.where(ok, labels[i, j], -1)
    d = np.diff(traj, axis=1)
    steps = np.hypot(d[..., 0], d[..., 1])  # (n, T) step lengths
    offsets = np.arange(-window, window + 1)
    # Runs of equal labels along each walker: (k, t) with lab[k, t] != lab[k, t-1] starts a run;
    # the run it ends began at the previous change of the same walker (or at row 0).
    ck, ct = np.nonzero(lab[:, 1:] != lab[:, :-1])
    ct = ct + 1
    prev = np.zeros_like(ct)
    if ct.size:
        prev[1:] = np.where(ck[1:] == ck[:-1], ct[:-1], 0)
    keep = ((ct - prev) >= dwell) & (lab[ck, ct - 1] >= 0) & (lab[ck, ct] >= 0)
    ev_w = ck[keep].astype(np.int64)
    ev_t = ct[keep].astype(np.int64)
    src = lab[ev_w, ev_t - 1] if ev_w.size else np.zeros(0, dtype=np.int64)
    mi, mj = np.divmod(src, nx)
    min_xy = np.stack([landscape.x0 + mj * landscape.h, landscape.y0 + mi * landscape.h], axis=1)
    min_loss = landscape.z.ravel()[src]
    tt = ev_t[:, None] - 1 + offsets[None, :]
    inside = (tt >= 0) & (tt < rows - 1)
    sl = np.where(inside, steps[ev_w[:, None], np.clip(tt, 0, rows - 2)], np.nan)
    jump = steps[ev_w, ev_t - 1] if ev_w.size else np.zeros(0)
    return EscapeEvents(walker=ev_w, step=ev_t, minimum_xy=min_xy.reshape(-1, 2), minimum_loss=min_loss,
                        jump=jump, offsets=offsets, step_lengths=sl.reshape(-1, offsets.size), dwell=int(dwell))


def fit_alpha(lags, msd, lag_min: int, lag_max: int) -> tuple[float | None, str | None, object]:
    """α of MSD ∝ τ^α over [lag_min, lag_max] by :func:`anodiff.fit_power_law`; (alpha, reason if None, fit)."""
    from .msd import fit_power_law  # noqa: PLC0415

    try:
        fit = fit_power_law(lags, msd, lag_min, lag_max)
    except InputError as exc:
        return None, str(exc), None
    if not math.isfinite(fit.alpha):
        return None, "fit is not finite", None
    return fit.alpha, None, fit


def gradient_levy(samples: np.ndarray, max_samples: int = 20000, seed: int = 0) -> tuple[dict | None, str | None]:
    """Symmetric Lévy α-stable fit of gradient components, if the Lévy engine is available.

    Uses at most `max_samples` values drawn without replacement (seeded).
    Returns (dict of the fit, None) or (None, reason).
    """
    try:
        from .levy import fit_levy_stable  # noqa: PLC0415
    except ImportError:
        return None, "levy engine not available"
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 10:
        return None, f"too few gradient samples ({x.size})"
    if x.size > max_samples:
        x = np.random.default_rng(seed).choice(x, max_samples, replace=False)
    try:
        fit = fit_levy_stable(x, symmetric=True)
    except (InputError, ValueError, RuntimeError) as exc:
        return None, f"levy fit failed: {exc}"
    out = {}
    for name in ("alpha", "beta", "scale", "loc", "loglik", "llr_gauss", "vuong_p"):
        v = getattr(fit, name, None)
        if v is not None and np.ndim(v) == 0 and math.isfinite(float(v)):
            out[name] = float(v)
    ci = getattr(fit, "ci", None)
    if isinstance(ci, dict):
        out["ci"] = {k: [float(a) for a in np.ravel(v)] for k, v in ci.items()}
    elif ci is not None:
        try:
            out["ci"] = [float(a) for a in np.ravel(ci)]
        except (TypeError, ValueError):
            pass
    out["n_samples"] = int(x.size)
    if "alpha" not in out:
        return None, "levy fit returned no finite alpha"
    return out, None


# --------------------------------------------------------------------------- #
# One experiment: landscape + walkers + analysis
# --------------------------------------------------------------------------- #

@dataclass
class ToyResult:
    """Everything one run of the model measured (see :func:`simulate`)."""

    landscape: Landscape
    walks: Walks
    starts: np.ndarray
    loss: np.ndarray            # (n, T+1) L(w_t), loss units
    t0_walkers: np.ndarray      # (n,) entry step into the final basin, -1 if undefined
    t0: int | None              # median over the walkers that stayed
    curves: dict                # name -> (lags, msd, count)
    fits: dict                  # name -> (alpha, reason, fit)
    fit_ranges: dict            # name -> (lag_min, lag_max)
    escapes: EscapeEvents
    grad_levy: dict | None
    grad_levy_reason: str | None
    grad_levy_early: dict | None
    grad_levy_early_reason: str | None
    params: dict

    def summary(self) -> dict:
        """The scalar summary (JSON-ready: finite numbers or null with a reason)."""
        cached = self.__dict__.get("_summary")
        if cached is None:
            cached = self.__dict__["_summary"] = self._summary()
        return json.loads(json.dumps(cached))

    def _summary(self) -> dict:
        w = self.walks
        stay = ~w.left
        out = {"landscape": self.landscape.kind}
        reasons = {}
        for name in ("early", "late", "whole", "short"):
            alpha, reason, fit = self.fits[name]
            out[f"alpha_{name}"] = alpha
            if alpha is None:
                reasons[f"alpha_{name}"] = reason
            else:
                out[f"alpha_{name}_rmse"] = fit.rmse
                out[f"alpha_{name}_lags"] = [fit.lag_min, fit.lag_max]
        out["t0"] = self.t0
        if self.t0 is None:
            reasons["t0"] = "no walker stayed on the landscape"
        valid = self.t0_walkers[self.t0_walkers >= 0]
        out["t0_walkers_quartiles"] = ([float(q) for q in np.percentile(valid, [25, 50, 75])]
                                       if valid.size else None)
        out["escaped_fraction"] = float(w.left.mean())
        out["n_walkers"] = int(w.n_walkers)
        out["n_stayed"] = int(stay.sum())
        ev = self.escapes
        out["n_minimum_escapes"] = int(ev.walker.size)
        out["minimum_escape_fraction"] = float(np.unique(ev.walker).size / max(1, w.n_walkers))
        out["final_loss_median"] = (float(np.median(self.loss[stay, -1])) if stay.any() else None)
        out["loss_range"] = float(np.ptp(self.landscape.z))
        g = w.grads
        if g is not None and np.isfinite(g).any():
            comp = g[np.isfinite(g)]
            out["grad_abs_median"] = float(np.median(np.abs(comp)))
            out["grad_abs_p99"] = float(np.quantile(np.abs(comp), 0.99))
        if self.grad_levy is not None:
            out["grad_alpha"] = self.grad_levy["alpha"]
            out["grad_levy"] = self.grad_levy
        else:
            out["grad_alpha"] = None
            reasons["grad_alpha"] = self.grad_levy_reason
        if self.grad_levy_early is not None:
            out["grad_alpha_early"] = self.grad_levy_early["alpha"]
            out["grad_levy_early"] = self.grad_levy_early
        else:
            out["grad_alpha_early"] = None
            reasons["grad_alpha_early"] = self.grad_levy_early_reason
        out["params"] = self.params
        out["reasons"] = reasons
        out["definitions"] = {
            "escaped_fraction": "fraction of walkers that left the landscape (stopped and flagged)",
            "minimum_escape_fraction": f"fraction of walkers with >= 1 escape from a local minimum "
                                       f"(dwell >= {self.escapes.dwell} steps in its steepest-descent basin)",
            "t0": "median over walkers that stayed of the step after which the loss stays <= "
                  "L_end + basin_tol * loss_range (entry into the final basin)",
            "alpha_early": "MSD pooled over walkers, each over its rows [0, t0_k]",
            "alpha_late": "MSD pooled over walkers, each over its rows [t0_k, T]",
            "alpha_whole": "trial-averaged time-averaged MSD of whole trajectories",
            "alpha_short": f"alpha_whole's MSD fitted over lags 1..{self.params['short_lag_max']}",
            "grad_alpha": "symmetric Levy alpha-stable fit of the x and y gradient components of all steps "
                          "(at most 20000 values, seeded subsample)",
            "grad_alpha_early": "the same for the steps before each walker's t0_k",
            "units": "positions in w-units, loss in loss units, time in iterations",
        }
        return _jsonable(out)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def simulate(landscape: str | Landscape = "fractal", *, eta: float = DEFAULT_ETA, sigma: float = DEFAULT_SIGMA,
             trials: int = DEFAULT_TRIALS, iterations: int = DEFAULT_ITERATIONS, seed: int = 0,
             size: int = DEFAULT_SIZE, extent: float = DEFAULT_EXTENT, start: str = "same",
             start_quantile: float = 0.8, start_in_catchment: bool = True,
             catchment_smooth: float = 16.0, basin_tol: float = 0.05, fit_frac: float = 0.25,
             short_lag_max: int = 10, escape_dwell: int = 5, escape_window: int = 10,
             landscape_kw: dict | None = None, progress: bool = False) -> ToyResult:
    """Run the simplified SGD model and analyse it (§III.E, Fig. 8 of the paper).

    Parameters
    ----------
    landscape : "fractal" | "random" | "convex" | Landscape
        Built with `size`² nodes over [0, extent]² (w-units) from `seed`
        (the random landscape shuffles and smooths the fractal of the same seed).
    eta, sigma : learning rate η > 0 and noise scale σ ≥ 0 of
        w_{t+1} = w_t − η∇L(w_t) + ησZ_t.
    trials : number of walkers (independent noise streams).
    iterations : T, SGD steps per walker.
    start : "same" (every trial starts at one high-altitude point, as in the
        paper) or "random" (each at its own high-altitude point); high altitude
        = loss ≥ the `start_quantile` quantile, ≥ 10 % of the side from the edges,
        and (``start_in_catchment``) inside the coarse catchment of the global
        minimum (:func:`catchment`), so that the walk is a descent from a
        high-altitude point towards the wide minimum, as in Fig. 8a.
    basin_tol : final-basin tolerance as a fraction of the loss range
        (see :func:`basin_entry`).
    fit_frac : α is fitted over lags 1 … fit_frac · (median window length).

    Analysis: per walker t0_k (:func:`basin_entry`); MSD "early" pooled over
    rows [0, t0_k] of each walker, "late" over rows [t0_k, T] (:func:`pooled_msd`),
    "whole" the trial-averaged MSD of whole trajectories (walkers that stayed),
    each fitted with :func:`anodiff.fit_power_law`; "short" = the whole MSD
    over lags 1 … short_lag_max. Gradient components of all steps, their
    Lévy fit (when :mod:`anodiff.levy` is available), escapes from local
    minima (:func:`escape_events`).
    """
    if not isinstance(landscape, Landscape):
        if landscape not in LANDSCAPES:
            raise InputError(f"unknown landscape {landscape!r} (use one of {', '.join(LANDSCAPES)})")
        landscape = make_landscape(landscape, size, seed, extent=extent, **(landscape_kw or {}))
    eta, sigma, iterations = _check_walk_params(eta, sigma, iterations)
    trials = int(trials)
    if trials < 1:
        raise InputError(f"trials must be >= 1, got {trials}")
    if start not in ("same", "random"):
        raise InputError(f"start must be 'same' or 'random', got {start!r}")
    if not 0 < fit_frac <= 1:
        raise InputError(f"fit_frac must be in (0, 1], got {fit_frac}")
    region = catchment(landscape.z, catchment_smooth) if start_in_catchment else None
    if start == "same":
        starts = np.repeat(start_positions(landscape, 1, seed, start_quantile, region=region), trials, axis=0)
    else:
        starts = start_positions(landscape, trials, seed, start_quantile, region=region)
    walks = walk(landscape, starts, iterations, eta, sigma, seed, progress=progress)
    loss = walks.loss if walks.loss is not None else loss_along(landscape, walks.traj)
    tol = basin_tol * float(np.ptp(landscape.z))
    t0w = basin_entry(loss, tol)
    stay = ~walks.left
    T = iterations
    curves, fits, ranges = {}, {}, {}
    t0 = int(np.median(t0w[stay])) if stay.any() else None

    def add(name, fn, lag_max_of):
        try:
            lags, curve, count = fn()
        except InputError as exc:
            curves[name] = None
            fits[name] = (None, str(exc), None)
            return
        curves[name] = (lags, curve, count)
        lag_max = lag_max_of(lags)
        ranges[name] = (1, lag_max)
        fits[name] = fit_alpha(lags, curve, 1, lag_max)

    if stay.any():
        ts = t0w[stay]
        med_early = float(np.median(ts + 1))
        med_late = float(np.median(T + 1 - ts))
        add("early", lambda: pooled_msd(walks.traj[stay], 0, ts + 1),
            lambda lags: max(3, int(fit_frac * med_early)))
        add("late", lambda: pooled_msd(walks.traj[stay], ts, T + 1),
            lambda lags: max(3, int(fit_frac * med_late)))
        add("whole", lambda: pooled_msd(walks.traj[stay], 0, T + 1),
            lambda lags: max(3, int(fit_frac * (T + 1))))
        if curves["whole"] is not None:
            lags, curve, count = curves["whole"]
            curves["short"] = curves["whole"]
            ranges["short"] = (1, int(short_lag_max))
            fits["short"] = fit_alpha(lags, curve, 1, int(short_lag_max))
        else:
            fits["short"] = fits["whole"]
    else:
        for name in ("early", "late", "whole", "short"):
            curves[name] = None
            fits[name] = (None, "no walker stayed on the landscape", None)
    for name in ("early", "late"):
        alpha, reason, fit = fits[name]
        if alpha is not None and np.median(t0w[stay] if name == "early" else T - t0w[stay]) < 10:
            fits[name] = (None, f"median {name} window shorter than 10 steps", None)
    escapes = escape_events(landscape, walks.traj, dwell=escape_dwell, window=escape_window)
    gvals = walks.grads[np.isfinite(walks.grads)] if walks.grads is not None else np.zeros(0)
    levy, levy_reason = gradient_levy(gvals, seed=seed)
    if walks.grads is not None:
        before = np.arange(iterations)[None, :] < t0w[:, None]
        gearly = walks.grads[before]
        gearly = gearly[np.isfinite(gearly)]
    else:
        gearly = np.zeros(0)
    levy_early, levy_early_reason = gradient_levy(gearly, seed=seed)
    params = {"landscape": landscape.kind, "eta": eta, "sigma": sigma, "trials": trials,
              "iterations": iterations, "seed": int(seed), "size": list(landscape.shape),
              "extent": float(landscape.bounds[1] - landscape.bounds[0]), "h": float(landscape.h),
              "start": start, "start_quantile": float(start_quantile),
              "start_in_catchment": bool(start_in_catchment), "catchment_smooth": float(catchment_smooth), "basin_tol": float(basin_tol),
              "fit_frac": float(fit_frac), "short_lag_max": int(short_lag_max),
              "escape_dwell": int(escape_dwell), "escape_window": int(escape_window),
              "landscape_params": landscape.params,
              "noise": "eta*sigma*Z, Z ~ N(0, I2) per step",
              "rng": "counter-based SplitMix64 per walker + Box-Muller (cpp/toy.hpp)"}
    return ToyResult(landscape=landscape, walks=walks, starts=starts, loss=loss, t0_walkers=t0w, t0=t0,
                     curves=curves, fits=fits, fit_ranges=ranges, escapes=escapes, grad_levy=levy,
                     grad_levy_reason=levy_reason, grad_levy_early=levy_early,
                     grad_levy_early_reason=levy_early_reason, params=_jsonable(params))


# --------------------------------------------------------------------------- #
# Files: DIR/results.h5 + DIR/summary.json
# --------------------------------------------------------------------------- #

def save(result: ToyResult, out_dir, max_walkers: int = 1000, max_grad_samples: int = 1_000_000) -> Path:
    """Write ``out_dir/results.h5`` and ``out_dir/summary.json``; returns out_dir.

    results.h5 (every dataset has a ``units`` attribute)::

        /landscape/z              (ny, nx)  loss          attrs h, x0, y0, kind, params (JSON)
        /walkers/start            (n, 2)    w-units
        /walkers/exit_step        (n,)      steps, -1 = stayed on the landscape
        /walkers/t0               (n,)      steps, entry into the final basin (-1 undefined)
        /walkers/final_loss       (n,)      loss (NaN if left)
        /walkers/stored           (k,)      indices of the walkers whose paths are stored
        /walkers/traj             (k, T+1, 2) w-units (NaN after leaving)
        /walkers/loss             (k, T+1)  loss
        /walkers/grads            (k, T, 2) loss per w-unit
        /msd/<name>/lags, msd, count   name in early, late, whole; attrs alpha, lag_min, lag_max, rmse
        /gradients/samples        (m,)      loss per w-unit, gradient components of all steps (subsampled
                                            to max_grad_samples, seeded)
        /gradients/hist_edges, hist_counts  histogram of all components (201 bins, symmetric)
        /escapes/walker, step, minimum_xy, minimum_loss, jump, offsets, step_lengths
    """
    import h5py  # noqa: PLC0415

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create output directory ({exc})") from None
    w = result.walks
    n = w.n_walkers
    stored = np.arange(min(n, int(max_walkers)))
    L = result.landscape
    try:
        with h5py.File(out / "results.h5", "w") as f:
            def ds(path, data, units, **attrs):
                big = np.size(data) > 4096
                d = f.create_dataset(path, data=data, compression="gzip" if big else None,
                                     compression_opts=1 if big else None, shuffle=big)
                d.attrs["units"] = units
                for k, v in attrs.items():
                    d.attrs[k] = v
                return d

            f.attrs["anodiff_version"] = _version()
            f.attrs["model"] = "w_{t+1} = w_t - eta*grad L(w_t) + eta*sigma*Z_t, Z_t ~ N(0, I2)"
            f.attrs["params"] = json.dumps(result.params)
            f.attrs["summary"] = json.dumps(result.summary())
            ds("landscape/z", L.z, "loss", h=L.h, x0=L.x0, y0=L.y0, kind=L.kind,
               params=json.dumps(_jsonable(L.params)),
               description="z[i, j] = L(x0 + j*h, y0 + i*h); h, x0, y0 in w-units")
            ds("walkers/start", result.starts, "w-units")
            ds("walkers/exit_step", w.exit_step, "steps", description="row of the first position outside; -1 stayed")
            ds("walkers/t0", result.t0_walkers, "steps", description="entry into the final basin; -1 undefined")
            ds("walkers/final_loss", result.loss[:, -1], "loss")
            ds("walkers/stored", stored, "index")
            ds("walkers/traj", w.traj[stored], "w-units", description="(walker, row t = w_t, xy); NaN after leaving")
            ds("walkers/loss", result.loss[stored], "loss")
            if w.grads is not None:
                ds("walkers/grads", w.grads[stored], "loss per w-unit", description="gradient used at step t")
            for name in ("early", "late", "whole"):
                c = result.curves.get(name)
                if c is None:
                    continue
                lags, curve, count = c
                alpha, reason, fit = result.fits[name]
                g = f.create_group(f"msd/{name}")
                g.attrs["alpha"] = np.nan if alpha is None else alpha
                if fit is not None:
                    g.attrs["lag_min"], g.attrs["lag_max"], g.attrs["rmse"] = fit.lag_min, fit.lag_max, fit.rmse
                    g.attrs["log10_K"] = fit.log10_K
                if reason:
                    g.attrs["reason"] = reason
                ds(f"msd/{name}/lags", lags, "steps")
                ds(f"msd/{name}/msd", curve, "w-units^2")
                ds(f"msd/{name}/count", count, "walkers", description="walkers contributing at each lag")
            if w.grads is not None:
                comp = w.grads[np.isfinite(w.grads)]
                samples = comp
                if comp.size > max_grad_samples:
                    pick = np.random.default_rng(result.params["seed"]).choice(comp.size, max_grad_samples,
                                                                                replace=False)
                    samples = comp[np.sort(pick)]
                ds("gradients/samples", samples, "loss per w-unit",
                   description="x and y gradient components of all steps of all walkers")
                gmax = float(np.max(np.abs(comp))) if comp.size else 1.0
                counts, edges = np.histogram(comp, bins=201, range=(-gmax, gmax))
                ds("gradients/hist_edges", edges, "loss per w-unit")
                ds("gradients/hist_counts", counts, "count")
                if result.grad_levy is not None:
                    f["gradients"].attrs["levy"] = json.dumps(result.grad_levy)
                else:
                    f["gradients"].attrs["levy_reason"] = result.grad_levy_reason
            ev = result.escapes
            g = f.create_group("escapes")
            g.attrs["dwell"] = ev.dwell
            g.attrs["description"] = ("escape from a local minimum: >= dwell steps in one steepest-descent "
                                      "basin, then a step into another basin")
            ds("escapes/walker", ev.walker, "index")
            ds("escapes/step", ev.step, "steps", description="row of the first position outside the basin")
            ds("escapes/minimum_xy", ev.minimum_xy, "w-units")
            ds("escapes/minimum_loss", ev.minimum_loss, "loss")
            ds("escapes/jump", ev.jump, "w-units", description="|w(step) - w(step-1)|")
            ds("escapes/offsets", ev.offsets, "steps")
            ds("escapes/step_lengths", ev.step_lengths, "w-units",
               description="|w(t+1) - w(t)| for t = step - 1 + offsets")
    except OSError as exc:
        raise InputError(f"{out / 'results.h5'}: cannot write ({exc})") from None
    with open(out / "summary.json", "w") as fh:
        json.dump(result.summary(), fh, indent=2, allow_nan=False)
    return out


def _version() -> str:
    from . import __version__  # noqa: PLC0415

    return __version__


def compare(out_dir=None, *, seed: int = 0, progress: bool = False, **kw) -> dict:
    """Fig. 8 comparison: the same seeds on the fractal, random and convex landscapes.

    Runs :func:`simulate` for each landscape (keywords shared); with `out_dir`
    writes ``out_dir/<landscape>/results.h5 + summary.json`` and
    ``out_dir/summary.json`` (``{"fractal": {...}, "random": {...}, "convex": {...}}``).
    Returns {landscape: ToyResult}.
    """
    results = {}
    fractal = None
    for kind in LANDSCAPES:
        if kind == "fractal":
            ls = kind
        elif kind == "random":
            ls = random_landscape(fractal, seed=seed, smooth=(kw.get("landscape_kw") or {}).get("smooth", 8.0))
        else:
            ls = kind
        res = simulate(ls, seed=seed, progress=progress, **kw)
        if kind == "fractal":
            fractal = res.landscape
        results[kind] = res
        if out_dir is not None:
            save(res, Path(out_dir) / kind)
    if out_dir is not None:
        with open(Path(out_dir) / "summary.json", "w") as fh:
            json.dump({k: r.summary() for k, r in results.items()}, fh, indent=2, allow_nan=False)
    return results


def load_results(path) -> dict:
    """Read a results.h5 (or its directory) back: {"summary": dict, "<group>/<name>": array, ...}."""
    import h5py  # noqa: PLC0415

    p = Path(path)
    if p.is_dir():
        p = p / "results.h5"
    if not p.exists():
        raise InputError(f"{p}: no such file")
    out = {}
    with h5py.File(p, "r") as f:
        out["summary"] = json.loads(f.attrs["summary"])
        out["params"] = json.loads(f.attrs["params"])

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        out["landscape/attrs"] = {k: f["landscape/z"].attrs[k] for k in ("h", "x0", "y0", "kind")}
    return out


def quicklook(path, fig=None):
    """One figure of a toy run (or of a ``--landscape all`` directory): landscape + paths, MSD, gradients.

    `path` is a results.h5, its directory, or a compare directory holding
    fractal/, random/, convex/. Returns the matplotlib Figure (Fig. 8 a–c, f).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    p = Path(path)
    runs = [p / k for k in LANDSCAPES if (p / k / "results.h5").exists()] if p.is_dir() else []
    if not runs:
        runs = [p]
    data = [load_results(r) for r in runs]
    if fig is None:
        fig = plt.figure(figsize=(12, 3.6 * len(data)))
    axes = fig.subplots(len(data), 3, squeeze=False)
    for row, d in zip(axes, data):
        s = d["summary"]
        a = d["landscape/attrs"]
        z = d["landscape/z"]
        ny, nx = z.shape
        ext = (a["x0"], a["x0"] + (nx - 1) * a["h"], a["y0"], a["y0"] + (ny - 1) * a["h"])
        row[0].contourf(z, levels=30, extent=ext, cmap="viridis")
        for tr in d["walkers/traj"][:10]:
            row[0].plot(tr[:, 0], tr[:, 1], "k-", lw=0.6)
        row[0].set_title(f"{s['landscape']}: left {s['escaped_fraction']:.0%}")
        row[0].set_xlabel("w1 (w-units)")
        row[0].set_ylabel("w2 (w-units)")
        for name, mk in (("whole", "-"), ("early", "s-"), ("late", "o-")):
            if f"msd/{name}/msd" in d:
                al = s.get(f"alpha_{name}")
                lab = f"{name} α={al:.2f}" if al is not None else f"{name}"
                row[1].loglog(d[f"msd/{name}/lags"], d[f"msd/{name}/msd"], mk, ms=2, label=lab)
        row[1].set_xlabel("lag τ (steps)")
        row[1].set_ylabel("MSD (w-units²)")
        row[1].legend(fontsize=8, title=f"t0={s['t0']}")
        if "gradients/hist_counts" in d:
            e = d["gradients/hist_edges"]
            c = d["gradients/hist_counts"]
            row[2].semilogy(0.5 * (e[1:] + e[:-1]), np.maximum(c, 0.5) / c.sum(), "-")
            ga = s.get("grad_alpha")
            row[2].set_title("∇L components" + (f", Lévy α={ga:.2f}" if ga is not None else ""))
            row[2].set_xlabel("∂L/∂w (loss per w-unit)")
    fig.tight_layout()
    return fig
