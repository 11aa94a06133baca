"""Geometry of an SGD path and of the loss along it, from a window's Gram matrix.

A window of P points x_0 … x_{P-1} (weight vectors, any common origin) is
described by its Gram matrix ``G[s, t] = x_s · x_t`` (P × P, float64) and by
the contour position of each point, ``contour[p] = Σ_{t < t_p} |w(t+1) - w(t)|``
(path length from the window start, every SGD step counted once). Then, for a
pair s < t (paper §III.C–D, DESIGN.md):

* contour length   ``Δs(s, t) = contour[t] - contour[s]``  (weight units);
* end-to-end       ``Δr(s, t)² = G_ss + G_tt - 2 G_st``     (squared weight units);
* transverse       ``h(s, t) = max_{s<u<t} dist(x_u, line(x_s, x_t))`` (weight units);
* pair MSL         ``(L(s) - L(t))²`` with the loss at the same steps (loss units²).

Pair sums are binned in log-spaced bins (of Δs for Δr², of Δr for h and the
MSL) by the compiled kernels of `anodiff._core`; every binned curve reports
the bin edges, the mean abscissa of its pairs and the pair count.

Scaling laws fitted here: ``Δr² ∝ Δs^λ`` (fractal dimension ``D_f = 2/λ``),
``h ∝ Δr^ν`` (ν = 1: self-similar path; ν ≠ 1: self-affine) and
``MSL ∝ Δr^{2H}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._config import get_num_threads
from .errors import InputError
from .msd import PowerLawFit, fit_power_law

# Transverse distances below this fraction of Δr are rounding noise of
# G_ss + G_tt - 2 G_st in float64 (a straight path gives ~1e-8).
TRANSVERSE_ZERO = 1e-6


@dataclass
class BinnedCurve:
    """Mean of a pair quantity y in log-spaced bins of a pair quantity x.

    ``x[b]`` is the mean abscissa of the pairs in bin b, ``y[b]`` the mean
    ordinate (NaN for empty bins), ``count[b]`` the number of pairs.
    """

    edges: np.ndarray
    x: np.ndarray
    y: np.ndarray
    count: np.ndarray

    def populated(self) -> tuple[np.ndarray, np.ndarray]:
        m = (self.count > 0) & (self.x > 0) & (self.y > 0)
        return self.x[m], self.y[m]


def log_edges(lo: float, hi: float, n_bins: int) -> np.ndarray:
    """n_bins + 1 log-spaced edges covering [lo, hi] (lo > 0), widened by 1e-9 relative."""
    if not (lo > 0 and hi >= lo and np.isfinite(hi)):
        raise InputError(f"log bins need 0 < lo <= hi, got lo={lo}, hi={hi}")
    lo, hi = lo * (1 - 1e-9), hi * (1 + 1e-9)
    return np.geomspace(lo, hi, int(n_bins) + 1)


def contour_positions(step_sq: np.ndarray, stride: int = 1) -> np.ndarray:
    """Contour position of every ``stride``-th point of a window.

    ``step_sq[t] = |w(t+1) - w(t)|²`` (T-1 values). Returns
    ``c[p] = Σ_{t < p·stride} |w(t+1) - w(t)|`` for p = 0 … (T-1)//stride, so that
    ``Δs(t1, t2) = Σ_{t=t1}^{t2-1} |w(t+1) - w(t)|``.
    """
    c = np.concatenate(([0.0], np.cumsum(np.sqrt(np.maximum(step_sq, 0.0)))))
    return c[::int(stride)]


def gram_sqdist_range(G: np.ndarray) -> tuple[float, float]:
    """(smallest positive, largest) Δr² over the pairs of a Gram matrix, in row blocks."""
    P = G.shape[0]
    diag = np.diagonal(G).copy()
    lo, hi = np.inf, 0.0
    block = max(1, 2**22 // max(P, 1))
    for r0 in range(0, P, block):
        r1 = min(P, r0 + block)
        D = diag[r0:r1, None] + diag[None, :] - 2.0 * G[r0:r1]
        np.maximum(D, 0.0, out=D)
        hi = max(hi, float(D.max()))
        pos = D[D > 0]
        if pos.size:
            lo = min(lo, float(pos.min()))
    return lo, hi


def transverse_distance(G: np.ndarray) -> np.ndarray:
    """Transverse distance h(s, t) of every pair (upper triangle, t ≥ s+2; 0 elsewhere).

    ``h(s, t) = max_{s<u<t}`` of the distance of x_u from the line through
    x_s and x_t (or from x_s when x_s = x_t), in weight units, computed from
    squared distances only: ``h² = d_su - (d_su + d_st - d_ut)² / (4 d_st)``.
    Cost O(P³/6); threads over rows.
    """
    G = _square_f64(G)
    return _core.transverse_matrix(G, get_num_threads())


def _square_f64(G) -> np.ndarray:
    G = np.ascontiguousarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise InputError(f"Gram matrix must be square, got shape {G.shape}")
    return G


@dataclass
class PairMeasures:
    """Binned pair measures of one window (see the module docstring)."""

    n_points: int
    stride: int
    contour: BinnedCurve          # x = Δs, y = ⟨Δr²⟩
    transverse: BinnedCurve | None  # x = Δr, y = ⟨h⟩
    transverse_rms: np.ndarray | None  # sqrt⟨h²⟩ per Δr bin
    msl: BinnedCurve | None       # x = Δr, y = ⟨(ΔL)²⟩
    max_transverse_ratio: float = float("nan")  # max over bins of ⟨h⟩/⟨Δr⟩
    notes: list[str] = field(default_factory=list)


def pair_measures(G: np.ndarray, contour: np.ndarray, loss: np.ndarray | None = None, *,
                  n_bins: int = 40, transverse: bool = True, stride: int = 1) -> PairMeasures:
    """Binned Δr² vs Δs, transverse distance vs Δr and MSL vs Δr of one window.

    Parameters
    ----------
    G : (P, P) float64 Gram matrix of the window's points (symmetric).
    contour : (P,) contour positions of the points (see `contour_positions`).
    loss : (P,) loss at the same points, or None (no MSL).
    n_bins : number of log-spaced bins of Δs and of Δr, spanning the smallest
        positive to the largest value in the window.
    transverse : compute the O(P³) transverse distances.
    stride : steps between consecutive points (recorded in the result).
    """
    G = _square_f64(G)
    P = G.shape[0]
    contour = np.ascontiguousarray(contour, dtype=np.float64)
    if contour.shape != (P,):
        raise InputError(f"contour must have shape ({P},), got {contour.shape}")
    if loss is not None:
        loss = np.ascontiguousarray(loss, dtype=np.float64)
        if loss.shape != (P,):
            raise InputError(f"loss must have shape ({P},), got {loss.shape}")
    notes: list[str] = []
    nt = get_num_threads()
    ds = np.diff(contour)
    ds_pos = ds[ds > 0]
    total = float(contour[-1] - contour[0]) if P else 0.0
    empty = BinnedCurve(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    if P < 2 or ds_pos.size == 0 or not total > 0:
        notes.append("the path has no two distinct points")
        return PairMeasures(P, stride, empty, None, None, None, notes=notes)
    s_edges = log_edges(float(ds_pos.min()), total, n_bins)
    r2_lo, r2_hi = gram_sqdist_range(G)
    if not np.isfinite(r2_lo):
        r2_lo = r2_hi = 1.0  # all points coincide: every pair falls out of the bins
        notes.append("all points of the window coincide")
    r_edges = log_edges(np.sqrt(r2_lo), np.sqrt(r2_hi), n_bins)
    nb = int(n_bins)
    s_dr2, s_ds, s_n = np.zeros(nb), np.zeros(nb), np.zeros(nb, np.int64)
    r_dr, r_dl2, r_n = np.zeros(nb), np.zeros(nb), np.zeros(nb, np.int64)
    _core.pair_bins(G, contour, loss, s_edges, r_edges, s_dr2, s_ds, s_n, r_dr, r_dl2, r_n, nt)
    with np.errstate(invalid="ignore", divide="ignore"):
        contour_curve = BinnedCurve(s_edges, s_ds / s_n, s_dr2 / s_n, s_n)
        msl = None if loss is None else BinnedCurve(r_edges, r_dr / r_n, r_dl2 / r_n, r_n)
    tcurve = trms = None
    ratio = float("nan")
    if transverse:
        h, h2, dr, n = np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb, np.int64)
        _core.transverse_bins(G, r_edges, h, h2, dr, n, nt)
        with np.errstate(invalid="ignore", divide="ignore"):
            tcurve = BinnedCurve(r_edges, dr / n, h / n, n)
            trms = np.sqrt(h2 / n)
            ratios = tcurve.y[n > 0] / tcurve.x[n > 0]
        ratio = float(np.max(ratios)) if ratios.size else float("nan")
    return PairMeasures(P, stride, contour_curve, tcurve, trms, msl, ratio, notes)


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of every n consecutive values (len(x) - n + 1 values; empty when len(x) < n)."""
    x = np.asarray(x, dtype=np.float64)
    n = int(n)
    if n < 1:
        raise InputError(f"moving-average length must be >= 1, got {n}")
    if x.size < n:
        return np.zeros(0)
    c = np.concatenate(([0.0], np.cumsum(x)))
    return (c[n:] - c[:-n]) / n


def moving_variance(x: np.ndarray, n: int) -> np.ndarray:
    """Population variance of every n consecutive values (len(x) - n + 1 values), float64.

    Computed from shifted prefix sums (shift = mean of x) to limit cancellation.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < n:
        return np.zeros(0)
    y = x - x.mean()
    m1 = moving_average(y, n)
    m2 = moving_average(y * y, n)
    return np.maximum(m2 - m1 * m1, 0.0)


@dataclass
class Fit:
    """A power-law fit or the reason it could not be made (fit is None)."""

    fit: PowerLawFit | None
    reason: str | None = None

    @property
    def exponent(self) -> float | None:
        return None if self.fit is None else self.fit.alpha


def try_fit(x, y, what: str, lo: float | None = None, hi: float | None = None) -> Fit:
    """Least-squares power law y ∝ x^e in log10 over lo ≤ x ≤ hi (positive points only)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if lo is not None:
        m &= x >= lo
    if hi is not None:
        m &= x <= hi
    if m.sum() < 3:
        return Fit(None, f"{what}: {int(m.sum())} usable points, a fit needs at least 3")
    return Fit(fit_power_law(x[m], y[m]))


@dataclass
class TwoSegmentFit:
    """Two independent power laws below and above a crossover, chosen by least squares."""

    short: Fit
    long: Fit
    crossover: float | None
    reason: str | None = None


def fit_two_segments(x, y, min_points: int = 3, what: str = "curve") -> TwoSegmentFit:
    """Best split of a log-log curve into two straight segments.

    For every split k of the populated points (sorted by x, at least
    `min_points` on each side) two independent least-squares lines are fitted
    to log10 y vs log10 x; the split with the smallest total squared residual
    wins. The crossover is the geometric mean of the last x of the first
    segment and the first x of the second.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[m], y[m]
    order = np.argsort(x)
    lx, ly = np.log10(x[order]), np.log10(y[order])
    n = lx.size
    if n < 2 * min_points:
        reason = f"{what}: {n} usable points, a two-segment fit needs at least {2 * min_points}"
        return TwoSegmentFit(Fit(None, reason), Fit(None, reason), None, reason)
    best, best_k = np.inf, None
    for k in range(min_points, n - min_points + 1):
        sse = _line_sse(lx[:k], ly[:k]) + _line_sse(lx[k:], ly[k:])
        if sse < best:
            best, best_k = sse, k
    k = best_k
    xs = 10.0 ** lx
    crossover = float(np.sqrt(xs[k - 1] * xs[k]))
    short = Fit(fit_power_law(xs[:k], 10.0 ** ly[:k]))
    long = Fit(fit_power_law(xs[k:], 10.0 ** ly[k:]))
    return TwoSegmentFit(short, long, crossover)


def _line_sse(x: np.ndarray, y: np.ndarray) -> float:
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    return float(r @ r)
