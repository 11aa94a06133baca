"""2-D projections of the loss landscape and their box-counting dimension (paper Fig. 1, §III.D).

A landscape is the loss on a plane through the weights w₀ of a checkpoint,

    L(α, β) = L(w₀ + α·d₁ + β·d₂),    α ∈ xs, β ∈ ys,

evaluated (BatchNorm in eval mode, no gradients) as the sample-weighted mean
loss over a fixed set of batches. Directions are flat vectors over the
trainable parameters in `model.parameters()` order (the order of a run file's
`/weights`), and come from one of

* `random_directions`: Gaussian directions normalised filter by filter (Li et al.
  2018): for every parameter tensor with ≥ 2 dims, each filter (slice along dim 0,
  i.e. one output channel / one row of a linear layer) of the direction is
  rescaled to the Frobenius norm of the same filter of w₀. One-dimensional
  parameters (biases, BatchNorm weight and bias) are set to zero
  (``ignore="biasbn"``, Li et al.'s recommended setting) or, with ``ignore=None``,
  copied from w₀ (the filter of a 1-D tensor is the whole tensor, and the
  direction along it is the tensor itself). Buffers (BatchNorm running mean and
  variance) are never moved.
* `hessian_directions`: the top-2 Hessian eigenvectors (unit vectors, scaled by
  ‖w₀‖ so that the default range ±1 covers the same scale as filter-normalised
  directions).
* `pca_directions`: the top principal axes of a recorded trajectory relative to
  w₀ (unit vectors), with every row of the trajectory projected on the plane.

`box_counting_dimension` estimates the box-counting (Minkowski) dimension of a
boolean 2-D set, or of the graph of a height map z(x, y) ∈ [2, 3], and
`level_set_dimensions` that of the level sets {z = c} of a height map at several
levels (each in [1, 2]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ._progress import progress_bar
from .errors import InputError

__all__ = ["BoxCount", "Landscape", "LevelSetDimensions", "PCADirections", "box_counting_dimension",
           "filter_normalize", "hessian_directions", "level_set", "level_set_box_count",
           "level_set_dimensions", "loss_surface", "pca_directions", "random_directions",
           "refine_surface"]


# --------------------------------------------------------------------------
# Directions
# --------------------------------------------------------------------------
def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def filter_normalize(direction, weights, shapes, ignore: str | None = "biasbn"):
    """Rescale a flat direction filter by filter to the weights' filter norms (Li et al. 2018).

    For each parameter tensor (shape in `shapes`, laid out consecutively in the flat
    vectors) with ≥ 2 dims and every filter i (index along dim 0):
    d_i ← d_i · ‖w_i‖ / ‖d_i‖ (Frobenius norms; a zero d_i stays zero).
    1-D tensors (biases, BatchNorm scale/shift) are zeroed when ``ignore="biasbn"``,
    else set equal to the weights. Works on torch tensors or numpy arrays; returns a
    new vector of the same kind.
    """
    if ignore not in ("biasbn", None):
        raise InputError(f"ignore must be 'biasbn' or None, got {ignore!r}")
    is_np = isinstance(direction, np.ndarray)
    d = direction.copy() if is_np else direction.clone()
    total = sum(int(np.prod(s)) if len(s) else 1 for s in shapes)
    if d.shape != (total,) or weights.shape != (total,):
        raise InputError(f"direction and weights must be flat vectors of length {total}, got "
                         f"{tuple(d.shape)} and {tuple(weights.shape)}")
    o = 0
    for s in shapes:
        n = int(np.prod(s)) if len(s) else 1
        if len(s) <= 1:
            if ignore == "biasbn":
                d[o:o + n] = 0
            else:
                d[o:o + n] = weights[o:o + n]
        else:
            rows = int(s[0])
            dv = d[o:o + n].reshape(rows, -1)
            wv = weights[o:o + n].reshape(rows, -1)
            if is_np:
                dn = np.linalg.norm(dv, axis=1, keepdims=True)
                wn = np.linalg.norm(wv, axis=1, keepdims=True)
                dv *= np.where(dn > 0, wn / np.where(dn > 0, dn, 1), 0)
            else:
                import torch  # noqa: PLC0415

                dn = torch.linalg.vector_norm(dv, dim=1, keepdim=True)
                wn = torch.linalg.vector_norm(wv, dim=1, keepdim=True)
                dv.mul_(torch.where(dn > 0, wn / torch.where(dn > 0, dn, torch.ones_like(dn)),
                                    torch.zeros_like(dn)))
        o += n
    return d


def random_directions(model, n: int = 2, seed: int = 0, ignore: str | None = "biasbn"):
    """`n` filter-normalised Gaussian directions around the model's weights, an (n, p) tensor.

    p = number of trainable scalars. Each direction is drawn N(0, 1) per entry (CPU
    generator seeded with `seed`, so the result does not depend on the device) and
    passed through `filter_normalize`.
    """
    import torch  # noqa: PLC0415

    params = _params(model)
    shapes = [tuple(p.shape) for p in params]
    w = torch.cat([p.detach().reshape(-1) for p in params])
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = torch.empty((n, w.numel()), dtype=w.dtype, device=w.device)
    for i in range(n):
        d = torch.randn(w.numel(), generator=gen, dtype=torch.float64).to(w.device, w.dtype)
        out[i] = filter_normalize(d, w, shapes, ignore=ignore)
    return out


def hessian_directions(model, loss_fn, batches, tol: float = 1e-4, scale: str = "weights", **kw):
    """The top-2 Hessian eigenvectors as a (2, p) tensor (see `anodiff.hessian.top_eigenvalues`).

    ``scale="weights"`` multiplies the unit eigenvectors by ‖w‖ (all trainable
    parameters), ``scale="unit"`` leaves them unit. Returns (directions, spectrum).
    """
    import torch  # noqa: PLC0415

    from .hessian import top_eigenvalues  # noqa: PLC0415

    spec = top_eigenvalues(model, loss_fn, batches, k=2, tol=tol, return_eigenvectors=True, **kw)
    dirs = spec.eigenvectors.clone()
    if scale == "weights":
        w = torch.cat([p.detach().reshape(-1) for p in _params(model)])
        dirs = dirs * torch.linalg.vector_norm(w).to(dirs.dtype)
    elif scale != "unit":
        raise InputError(f"scale must be 'weights' or 'unit', got {scale!r}")
    return dirs, spec


@dataclass
class PCADirections:
    """Principal axes of a trajectory around an origin.

    directions : (n_components, d) float64 unit vectors (rows)
    explained_variance_ratio : (n_components,) share of the variance of the rows
    coords : (n_rows, n_components) projection (w_t − origin) · d_i of the used rows
    rows : (n_rows,) indices of the rows used
    """

    directions: np.ndarray
    explained_variance_ratio: np.ndarray
    coords: np.ndarray
    rows: np.ndarray


def pca_directions(W, origin=None, n_components: int = 2, rows=None, block_cols: int = 1 << 16,
                   center: bool = True) -> PCADirections:
    """PCA directions of a weight trajectory W (n_steps, d) relative to `origin` (Li et al. 2018).

    X = W[rows] − origin (origin default: the last used row), optionally centred on its
    mean (as sklearn's PCA does), and the principal axes are the top right singular
    vectors of X, computed from the (n × n) Gram matrix G = X Xᵀ accumulated in
    float64 over column blocks, so W may be an h5py dataset larger than memory
    (`rows` must then be increasing). The trajectory is then projected:
    coords[t, i] = (W[t] − origin) · d_i, in weight units.
    """
    n_steps, d = (int(v) for v in W.shape)
    rows = np.arange(n_steps) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or len(rows) < 2:
        raise InputError(f"PCA needs at least 2 trajectory rows, got {len(rows)}")
    if np.any(rows < 0) or np.any(rows >= n_steps) or np.any(np.diff(rows) <= 0):
        raise InputError("rows must be increasing indices inside the trajectory")
    if not 1 <= n_components <= min(len(rows) - (1 if center else 0), d):
        raise InputError(f"n_components={n_components} is too large for {len(rows)} rows of {d} dims")
    origin_given = origin is not None
    if origin_given:
        origin = np.asarray(origin, dtype=np.float64).reshape(-1)
        if origin.shape != (d,):
            raise InputError(f"origin must have {d} entries, got {origin.shape[0]}")
    else:
        origin = np.asarray(W[int(rows[-1])], dtype=np.float64)

    def block(c0, c1):
        x = np.asarray(W[rows, c0:c1], dtype=np.float64)
        x -= origin[c0:c1]
        if not np.all(np.isfinite(x)):
            raise InputError("trajectory holds NaN or Inf")
        return x

    n = len(rows)
    G = np.zeros((n, n))
    for c0 in range(0, d, block_cols):
        x = block(c0, min(d, c0 + block_cols))
        G += x @ x.T
    # centring in Gram form: Gc = J G J, J = I − 11ᵀ/n
    if center:
        J = np.eye(n) - 1.0 / n
        Gc = J @ G @ J
    else:
        J = np.eye(n)
        Gc = G
    lam, U = np.linalg.eigh(Gc)
    order = np.argsort(lam)[::-1]
    lam, U = np.maximum(lam[order], 0.0), U[:, order]
    total = float(np.sum(lam))
    if total <= 0:
        raise InputError("the trajectory does not move: all rows are equal, no PCA directions")
    lam_k, U_k = lam[:n_components], U[:, :n_components]
    if np.any(lam_k <= 1e-12 * total):
        raise InputError(f"the trajectory spans fewer than {n_components} dimensions")
    # d_i = Xcᵀ u_i / sqrt(λ_i), Xc = J X
    coef = (J @ U_k) / np.sqrt(lam_k)
    dirs = np.zeros((n_components, d))
    for c0 in range(0, d, block_cols):
        c1 = min(d, c0 + block_cols)
        dirs[:, c0:c1] = coef.T @ block(c0, c1)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # projection of the rows: X dᵢ = X Xᵀ J uᵢ / √λᵢ = G J uᵢ / √λᵢ (no further pass over W)
    coords = (G @ J @ U_k) / np.sqrt(lam_k)
    return PCADirections(directions=dirs, explained_variance_ratio=lam_k / total, coords=coords,
                         rows=rows)


# --------------------------------------------------------------------------
# Loss surface
# --------------------------------------------------------------------------
@dataclass
class Landscape:
    """Loss on the plane w₀ + α d₁ + β d₂.

    xs : (nx,) α values; ys : (ny,) β values (units of the directions)
    loss : (ny, nx) mean loss, loss[i, j] = L(w₀ + xs[j] d₁ + ys[i] d₂)
    kind : "random" | "hessian" | "pca" | "custom"
    trajectory : (n, 2) projected trajectory coordinates (PCA) or None
    """

    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    kind: str = "custom"
    n_samples: int = 0
    trajectory: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def loss_surface(model, loss_fn: Callable, batches: Iterable, d1, d2, xs, ys, *,
                 origin=None, kind: str = "custom", progress: bool = False) -> Landscape:
    """Evaluate L(w₀ + x·d₁ + y·d₂) on the grid xs × ys (rows of the result follow ys).

    The model's trainable parameters are set in place for each grid point (and restored
    afterwards); w₀ = `origin` (flat, default the current parameters). Each point's loss
    is the sample-weighted mean of ``loss_fn(model(x_b), y_b)`` over the batches, with
    the model in eval mode and without gradients. Values are returned as computed
    (a diverging model far from w₀ may give inf or NaN).
    """
    import torch  # noqa: PLC0415

    from .hessian import _eval_mode, _to  # noqa: PLC0415

    params = _params(model)
    if not params:
        raise InputError("model has no trainable parameters")
    device, dtype = params[0].device, params[0].dtype
    p = sum(q.numel() for q in params)
    w_saved = torch.cat([q.detach().reshape(-1) for q in params])
    w0 = w_saved if origin is None else torch.as_tensor(origin).to(device, dtype).reshape(-1)
    d1 = torch.as_tensor(d1).to(device, dtype).reshape(-1)
    d2 = torch.as_tensor(d2).to(device, dtype).reshape(-1)
    for name, v in (("origin", w0), ("d1", d1), ("d2", d2)):
        if v.numel() != p:
            raise InputError(f"{name} has {v.numel()} entries, the model has {p} trainable parameters")
    xs = np.asarray(xs, dtype=np.float64).reshape(-1)
    ys = np.asarray(ys, dtype=np.float64).reshape(-1)
    if len(xs) == 0 or len(ys) == 0:
        raise InputError("grid axes must not be empty")
    data = []
    for item in batches:
        x, y = item
        if len(y):
            data.append((_to(x, device, None), _to(y, device, None), len(y)))
    if not data:
        raise InputError("no data: the batches are empty")
    N = sum(b[2] for b in data)
    out = np.empty((len(ys), len(xs)))
    bar = _bar(len(xs) * len(ys), "landscape", progress)
    try:
        with _eval_mode(model), torch.no_grad():
            for i, b in enumerate(ys):
                for j, a in enumerate(xs):
                    _set_params(params, w0 + float(a) * d1 + float(b) * d2)
                    total = 0.0
                    for x, y, nb in data:
                        total += float(loss_fn(model(x), y)) * nb
                    out[i, j] = total / N
                    bar.update(1)
    finally:
        with torch.no_grad():
            _set_params(params, w_saved)
        bar.close()
    return Landscape(xs=xs, ys=ys, loss=out, kind=kind, n_samples=int(N))


def _set_params(params, flat) -> None:
    """Copy a flat vector into the parameters, in place (their storage is kept)."""
    o = 0
    for q in params:
        n = q.numel()
        q.copy_(flat[o:o + n].view_as(q))
        o += n


def refine_surface(xs, ys, z, n: int = 257):
    """Bicubic-spline interpolation of a surface z (len(ys), len(xs)) onto an n × n grid.

    Returns (xs_fine, ys_fine, z_fine). Note: interpolation adds no structure below the
    coarse spacing; box counts on it are only meaningful at scales >= that spacing.
    """
    from scipy.interpolate import RectBivariateSpline  # noqa: PLC0415

    xs, ys, z = np.asarray(xs, float), np.asarray(ys, float), np.asarray(z, float)
    if not np.all(np.isfinite(z)):
        raise InputError("surface holds NaN or Inf; cannot interpolate")
    kx, ky = min(3, len(xs) - 1), min(3, len(ys) - 1)
    spl = RectBivariateSpline(ys, xs, z, kx=ky, ky=kx)
    xf = np.linspace(xs[0], xs[-1], n)
    yf = np.linspace(ys[0], ys[-1], n)
    return xf, yf, spl(yf, xf)


# --------------------------------------------------------------------------
# Box counting
# --------------------------------------------------------------------------
@dataclass
class BoxCount:
    """Result of a box-counting fit N(s) ∝ s^(−D).

    dimension : D, slope of log N against log(1/s) over the fitted range
    sizes : (m,) box sizes s in pixels (grid intervals)
    counts : (m,) N(s), number of boxes (cubes for a surface) covering the set
    fit_range : (s_min, s_max) the sizes used in the fit (inclusive)
    r2 : coefficient of determination of the fit; stderr : standard error of D
    kind : "set" (boolean image) or "surface" (height map graph)
    """

    dimension: float
    sizes: np.ndarray
    counts: np.ndarray
    fit_range: tuple
    r2: float
    stderr: float
    kind: str

    def as_dict(self) -> dict:
        return {"dimension": float(self.dimension), "fit_range": [int(self.fit_range[0]),
                int(self.fit_range[1])], "r2": float(self.r2), "stderr": float(self.stderr),
                "kind": self.kind, "sizes": [int(s) for s in self.sizes],
                "counts": [float(c) for c in self.counts]}


def _pool_any(a: np.ndarray, s: int) -> np.ndarray:
    ny, nx = a.shape
    py, px = -ny % s, -nx % s
    if py or px:
        a = np.pad(a, ((0, py), (0, px)))
    return a.reshape(a.shape[0] // s, s, a.shape[1] // s, s).any(axis=(1, 3))


def _corner_ranges(z: np.ndarray, s: int) -> np.ndarray:
    """(max − min) of the four corner samples of every s × s cell of the grid z."""
    zz = z[::s, ::s]
    a, b, c, d = zz[:-1, :-1], zz[1:, :-1], zz[:-1, 1:], zz[1:, 1:]
    return np.maximum(np.maximum(a, b), np.maximum(c, d)) - np.minimum(np.minimum(a, b),
                                                                        np.minimum(c, d))


def _pixel_ranges(z: np.ndarray, s: int) -> np.ndarray:
    """(max − min) of all samples of every closed s × s cell [i·s, (i+1)·s] × [j·s, (j+1)·s]."""
    from scipy.ndimage import maximum_filter, minimum_filter  # noqa: PLC0415

    o = -((s + 1) // 2)  # window [i, i + s] instead of centred on i
    hi = maximum_filter(z, size=s + 1, origin=o, mode="nearest")
    lo = minimum_filter(z, size=s + 1, origin=o, mode="nearest")
    ny, nx = (z.shape[0] - 1) // s, (z.shape[1] - 1) // s
    return (hi - lo)[: ny * s: s, : nx * s: s]


def _sizes(n: int, per_octave: int = 4) -> list[int]:
    """Box sizes 1 … n, about `per_octave` per factor of two (rounded, distinct)."""
    m = int(math.floor(math.log2(max(n, 1)) * per_octave + 1e-9))
    return sorted({int(round(2 ** (i / per_octave))) for i in range(m + 1)})


def _fit(sizes, counts, lo, hi, shape, kind) -> "BoxCount":
    sizes = np.asarray(sizes, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    sel = (sizes >= lo) & (sizes <= hi) & (counts > 0)
    if np.count_nonzero(sel) < 3:
        raise InputError(f"box sizes in [{lo}, {hi}] give fewer than 3 scales for a "
                         f"{shape[0]} x {shape[1]} array; widen the range or use a finer grid")
    x = np.log(1.0 / sizes[sel])
    y = np.log(counts[sel])
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum(resid ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    stderr = math.sqrt(ss_res / max(len(x) - 2, 1) / float(np.sum((x - x.mean()) ** 2)))
    used = sizes[sel]
    return BoxCount(dimension=float(coef[0]), sizes=sizes, counts=counts,
                    fit_range=(int(used.min()), int(used.max())), r2=r2, stderr=stderr, kind=kind)


def box_counting_dimension(a, *, min_size: int | None = None, max_size: int | None = None,
                           method: str = "corners") -> BoxCount:
    """Box-counting dimension of a boolean 2-D set or of the graph of a height map.

    Box sizes s run from 1 grid step up, four per octave (1, 2, 3, 4, 5, 6, 7, 8, 10, …); D is the least-squares slope of
    log N(s) against log(1/s) over the sizes in [min_size, max_size].

    * Boolean array (ny, nx): N(s) = number of s × s pixel boxes holding at least one
      True pixel. Default range s ∈ [2, min(ny, nx)/8]: single pixels carry the
      rasterisation, the largest boxes are too few. D ∈ [0, 2].
    * Float array z (ny, nx), samples on a square grid with unit spacing: the graph
      {(x, y, z(x, y))} is covered, over each s × s cell, by a column of R/s cubes of
      side s, R = the oscillation (max − min) of z over the cell, so
      N(s) = Σ_cells R/s (scaled by the grid area over the area the whole cells cover,
      when s does not divide the grid). (Counting R/s rather than ceil(R/s) makes D independent of
      the arbitrary unit of z.) D ∈ [2, 3]; a self-affine surface with Hurst exponent H
      has D = 3 − H. With ``method="corners"`` (default) R is measured on the grid
      resampled at the box size (the cell's four corners), so it is estimated with
      the same relative resolution at every scale; ``method="pixels"`` uses every
      sample inside the cell, whose range grows faster than s^H at small s (few
      samples per cell) and biases D low by 0.1–0.3 on fBm surfaces. Default range
      s ∈ [1, (n − 1)/16], n = min(ny, nx).

    Returns a `BoxCount` (dimension, sizes, counts, fitted range, R², stderr).
    """
    a = np.asarray(a)
    if a.ndim != 2:
        raise InputError(f"box counting needs a 2-D array, got shape {a.shape}")
    ny, nx = a.shape
    if min(ny, nx) < 8:
        raise InputError(f"array of shape {a.shape} is too small for box counting (need >= 8 x 8)")
    if method not in ("corners", "pixels"):
        raise InputError(f"method must be 'corners' or 'pixels', got {method!r}")
    if a.dtype == bool:
        if not a.any():
            raise InputError("the set is empty (no True pixel)")
        n = min(ny, nx)
        sizes = _sizes(n)
        counts = [np.count_nonzero(_pool_any(a, s)) for s in sizes]
        lo_d, hi_d, kind = 2, max(4, n // 8), "set"
    else:
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise InputError(f"box counting needs a boolean set or a real height map, got {a.dtype}")
        z = a.astype(np.float64)
        if not np.all(np.isfinite(z)):
            raise InputError("height map holds NaN or Inf")
        if float(z.max() - z.min()) == 0.0:
            raise InputError("height map is constant: its graph is a plane (dimension 2)")
        n = min(ny, nx) - 1
        sizes = [s for s in _sizes(n) if s <= n]
        rng = _corner_ranges if method == "corners" else _pixel_ranges
        counts = []
        for s in sizes:
            r = rng(z, s)
            # cells cover floor(n/s)·s of each axis: scale the count to the whole grid
            area = (r.shape[0] * s) * (r.shape[1] * s) / float((ny - 1) * (nx - 1))
            counts.append(float(np.sum(r)) / s / area)
        lo_d, hi_d, kind = 1, max(4, n // 16), "surface"
    lo = lo_d if min_size is None else int(min_size)
    hi = hi_d if max_size is None else int(max_size)
    return _fit(sizes, counts, lo, hi, a.shape, kind)


def level_set(z: np.ndarray, level: float) -> np.ndarray:
    """Boolean image of the contour {z = level} on a grid: the cells whose four corner
    values straddle the level (some >= level, some < level), shape (ny − 1, nx − 1)."""
    z = np.asarray(z, dtype=np.float64)
    above = z >= level
    c = np.stack([above[:-1, :-1], above[1:, :-1], above[:-1, 1:], above[1:, 1:]])
    return c.any(axis=0) & ~c.all(axis=0)


def level_set_box_count(z, level: float, *, min_size: int | None = None,
                        max_size: int | None = None, method: str = "corners") -> BoxCount:
    """Box-counting dimension of the contour {z = level} of a height map (D ∈ [1, 2]).

    ``method="corners"`` (default): N(s) = number of s × s cells of the grid resampled
    at spacing s whose four corners straddle the level — the contour seen at the same
    relative resolution at every scale. ``method="pixels"``: rasterise the contour at
    full resolution (`level_set`) and box-count that boolean image. Default range
    s ∈ [1, (n − 1)/16] (corners) or as `box_counting_dimension` for sets (pixels).
    For a fractional Brownian surface with Hurst exponent H, D = 2 − H.
    """
    z = np.asarray(z, dtype=np.float64)
    if method == "pixels":
        return box_counting_dimension(level_set(z, level), min_size=min_size, max_size=max_size)
    if method != "corners":
        raise InputError(f"method must be 'corners' or 'pixels', got {method!r}")
    n = min(z.shape) - 1
    sizes = [s for s in _sizes(n) if s <= n]
    counts = []
    for s in sizes:
        cells = level_set(z[::s, ::s], level)
        # cells cover floor(n/s)·s of each axis: scale the count to the whole grid
        area = (cells.shape[0] * s) * (cells.shape[1] * s) / float((z.shape[0] - 1) * (z.shape[1] - 1))
        counts.append(np.count_nonzero(cells) / area)
    lo = 1 if min_size is None else int(min_size)
    hi = max(4, n // 16) if max_size is None else int(max_size)
    return _fit(sizes, counts, lo, hi, z.shape, "level_set")


@dataclass
class LevelSetDimensions:
    """Box-counting dimensions of the level sets of a height map.

    levels : (m,) heights c; quantiles : (m,) their quantile in the height distribution
    dimensions, r2 : (m,); fits : list of BoxCount
    mean, std, min, max : spread of the dimension across levels
    """

    levels: np.ndarray
    quantiles: np.ndarray
    dimensions: np.ndarray
    r2: np.ndarray
    fits: list
    mean: float
    std: float
    min: float
    max: float

    def as_dict(self) -> dict:
        return {"levels": [float(v) for v in self.levels],
                "quantiles": [float(q) for q in self.quantiles],
                "dimensions": [float(v) for v in self.dimensions],
                "r2": [float(v) for v in self.r2],
                "fit_range": [list(map(int, f.fit_range)) for f in self.fits],
                "mean": self.mean, "std": self.std, "min": self.min, "max": self.max}


def level_set_dimensions(z, quantiles=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), *,
                         levels=None, min_size: int | None = None, max_size: int | None = None,
                         method: str = "corners") -> LevelSetDimensions:
    """Box-counting dimension of the contours {z = c} at several levels c (`level_set_box_count`).

    Levels are the given `quantiles` of z's values, or explicit `levels`. Levels whose
    contour covers fewer than 16 cells at full resolution are skipped. The spread
    (std, min, max) across levels is part of the result: a single number for "the"
    dimension of a landscape is only meaningful when it is small.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise InputError(f"height map must be 2-D, got shape {z.shape}")
    if min(z.shape) < 9:
        raise InputError(f"height map of shape {z.shape} is too small for box counting")
    if not np.all(np.isfinite(z)):
        raise InputError("height map holds NaN or Inf")
    if levels is None:
        qs = np.asarray(quantiles, dtype=np.float64).reshape(-1)
        if qs.size == 0 or np.any((qs <= 0) | (qs >= 1)):
            raise InputError("quantiles must lie strictly between 0 and 1")
        lv = np.quantile(z, qs)
    else:
        lv = np.asarray(levels, dtype=np.float64).reshape(-1)
        qs = np.array([np.mean(z < c) for c in lv])
    keep_l, keep_q, fits = [], [], []
    for c, q in zip(lv, qs):
        if np.count_nonzero(level_set(z, c)) < 16:
            continue
        fits.append(level_set_box_count(z, c, min_size=min_size, max_size=max_size, method=method))
        keep_l.append(c)
        keep_q.append(q)
    if not fits:
        raise InputError("no level of the surface has a contour large enough to box-count")
    dims = np.array([f.dimension for f in fits])
    return LevelSetDimensions(levels=np.array(keep_l), quantiles=np.array(keep_q), dimensions=dims,
                              r2=np.array([f.r2 for f in fits]), fits=fits, mean=float(dims.mean()),
                              std=float(dims.std(ddof=1)) if len(dims) > 1 else 0.0,
                              min=float(dims.min()), max=float(dims.max()))


def _bar(total, desc, enabled):
    return progress_bar(total, desc=desc, unit="pt", enabled=enabled, leave=False)
