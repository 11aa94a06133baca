"""Time-averaged mean squared displacement (MSD) over every lag.

For a window of T steps starting at t_w (DESIGN.md, numerical contract)::

    MSD(τ) = 1/(T-τ) · Σ_{t=t_w}^{t_w+T-τ-1} Σ_i (w_i(t+τ) - w_i(t))²,   τ = 1 … T-1

in squared weight units; τ in steps (SGD iterations). The sums over
dimensions are accumulated in float64 by `_core.msd_accumulate` from FFT
autocorrelations of the window centred on its first row, so the accumulator
is additive over dimension chunks: several processes, devices or Dask workers
may each own a share and `merge` at the end.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._config import get_num_threads
from .errors import InputError


class WindowAccumulator:
    """Float64 sums over dimensions for one window of T steps.

    acf[τ] = Σ_i Σ_{t<T-τ} x_i(t) x_i(t+τ) and sumsq[t] = Σ_i x_i(t)² with
    x_i(t) = w_i(t_w+t) - w_i(t_w).
    """

    def __init__(self, T: int, max_lag: int | None = None):
        T = int(T)
        if T < 2:
            raise InputError(f"window length T must be at least 2, got {T}")
        max_lag = T - 1 if max_lag is None else int(max_lag)
        if not 1 <= max_lag <= T - 1:
            raise InputError(f"max_lag must be in [1, T-1] = [1, {T - 1}], got {max_lag}")
        self.T = T
        self.max_lag = max_lag
        self.acf = np.zeros(max_lag + 1, dtype=np.float64)
        self.sumsq = np.zeros(T, dtype=np.float64)
        self.n_dims = 0

    def add(self, block: np.ndarray) -> None:
        """Add a (T, n) block of dimensions (float32 or float64; other dtypes become float64)."""
        if block.ndim != 2 or block.shape[0] != self.T:
            raise InputError(f"block must have shape (T={self.T}, n_dims), got {block.shape}")
        if block.dtype not in (np.float32, np.float64):
            block = block.astype(np.float64)
        block = np.ascontiguousarray(block)
        _core.msd_accumulate(block, self.acf, self.sumsq, get_num_threads())
        self.n_dims += block.shape[1]

    def merge(self, other: "WindowAccumulator") -> "WindowAccumulator":
        """Add another accumulator of the same window (a different set of dimensions)."""
        if (other.T, other.max_lag) != (self.T, self.max_lag):
            raise InputError("cannot merge accumulators of different windows")
        self.acf += other.acf
        self.sumsq += other.sumsq
        self.n_dims += other.n_dims
        return self

    def msd(self) -> tuple[np.ndarray, np.ndarray]:
        """(lags, msd): lags 1…max_lag (steps), msd float64 (squared weight units)."""
        return msd_from_sums(self.acf, self.sumsq)


def msd_from_sums(acf: np.ndarray, sumsq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSD from the accumulated sums: Σ_{t<T-τ} (sumsq[t] + sumsq[t+τ]) - 2 acf[τ], over T-τ."""
    T = sumsq.shape[0]
    max_lag = acf.shape[0] - 1
    lags = np.arange(1, max_lag + 1, dtype=np.int64)
    prefix = np.concatenate(([0.0], np.cumsum(sumsq)))
    total = prefix[T - lags] + (prefix[T] - prefix[lags]) - 2.0 * acf[1:]
    # Rounding can leave a tiny negative value where the true MSD is 0.
    return lags, np.maximum(total, 0.0) / (T - lags)


def _check_finite(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise InputError(f"{what} contains NaN or inf")


def msd(W, max_lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Time-averaged MSD of an in-memory trajectory over every lag.

    Parameters
    ----------
    W : array (T, d)
        Row t is the weight vector at step t (numpy array; float32/float64
        are used as they are, other dtypes are converted to float64).
    max_lag : int, optional
        Largest lag τ (default T-1).

    Returns
    -------
    lags : int64 array, 1 … max_lag (steps)
    msd : float64 array, MSD(τ) in squared weight units.
    """
    from . import gpu  # noqa: PLC0415  (light: the CUDA module itself loads on first use)

    if gpu._is_device_array(W):  # CuPy, torch CUDA tensors, DLPack CUDA arrays
        return gpu.msd(W, max_lag=max_lag)
    W = np.asarray(W)
    if W.ndim != 2:
        raise InputError(f"W must be a 2-D array (n_steps, n_dims), got shape {W.shape}")
    if W.shape[0] < 2 or W.shape[1] < 1:
        raise InputError(f"W needs at least 2 steps and 1 dimension, got shape {W.shape}")
    acc = WindowAccumulator(W.shape[0], max_lag)
    acc.add(W)
    _check_finite(acc.sumsq, "W")
    _check_finite(acc.acf, "W")
    return acc.msd()


@dataclass
class MsdWindows:
    """MSD of every window of a run: msd[k] is the curve of the window starting at t_w[k]."""

    t_w: np.ndarray  # (n_windows,) window starts (steps)
    T: int
    lags: np.ndarray  # (max_lag,) steps
    msd: np.ndarray  # (n_windows, max_lag) squared weight units
    n_dims: int
    source: str = ""


def msd_windows(path, T: int, tw_step: int, max_lag: int | None = None, *,
                t_start: int = 0, t_stop: int | None = None, progress: bool = False,
                allow_incomplete: bool = False, memory_mb: float = 256.0,
                client=None, n_shards: int | None = None, device: str = "cpu") -> MsdWindows:
    """MSD of every window [t_w, t_w+T), t_w = t_start, t_start+tw_step, …, from ONE pass over the file.

    Reads `/weights` of a run file in column strips aligned with its HDF5
    chunks; a prefetch thread reads the next strip while the kernels run.
    With a Dask `client` (or scheduler address) the columns are split into
    shards that the workers accumulate independently (see anodiff.cluster).
    device="cuda" streams the strips to the GPU instead (anodiff.gpu.msd_windows).
    """
    if device not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and client is None:
        from . import gpu  # noqa: PLC0415

        return gpu.msd_windows(path, T, tw_step, max_lag, t_start=t_start, t_stop=t_stop,
                               progress=progress, allow_incomplete=allow_incomplete,
                               memory_mb=memory_mb)
    if device == "cuda":
        raise InputError("device='cuda' with a Dask client is not supported yet: run CPU workers")
    from .io import Trajectory, column_shards  # noqa: PLC0415

    with Trajectory(path, allow_incomplete=allow_incomplete) as traj:
        starts = traj.window_starts(T, tw_step, t_start=t_start, t_stop=t_stop)
        n_dims, chunk_cols, source = traj.n_dims, traj.chunk_cols, str(traj.path)
    T = int(T)
    max_lag = T - 1 if max_lag is None else int(max_lag)
    WindowAccumulator(T, max_lag)  # validates T and max_lag
    windows = [(int(s), int(s) + T) for s in starts]
    if client is None:
        acf, sumsq = msd_partial_sums(path, windows, max_lag, progress=progress,
                                      allow_incomplete=allow_incomplete, memory_mb=memory_mb)
    else:
        from .cluster import default_n_shards, get_client, map_shards  # noqa: PLC0415

        client = get_client(client)
        shards = column_shards(n_dims, n_shards or default_n_shards(client), align=chunk_cols)
        acf, sumsq = map_shards(client, msd_partial_sums, shards, str(path), windows, max_lag,
                                allow_incomplete=allow_incomplete, memory_mb=memory_mb,
                                progress=progress, desc="msd")
    curves = []
    for k, window in enumerate(windows):
        _check_finite(sumsq[k], f"{source}: /weights in steps [{window[0]}, {window[1]})")
        curves.append(msd_from_sums(acf[k], sumsq[k]))
    return MsdWindows(t_w=np.asarray(starts, dtype=np.int64), T=T, lags=curves[0][0],
                      msd=np.stack([c for _, c in curves]), n_dims=n_dims, source=source)


def msd_partial_sums(path, windows: list[tuple[int, int]], max_lag: int, *,
                     columns: tuple[int, int] | None = None, progress: bool = False,
                     allow_incomplete: bool = False, memory_mb: float = 256.0):
    """acf (n_windows, max_lag+1) and sumsq (n_windows, T) summed over the columns [c0, c1) of a file.

    The unit of work of one process or one Dask worker; partial sums of
    disjoint column ranges add up to the whole.
    """
    from .io import Trajectory  # noqa: PLC0415

    T = windows[0][1] - windows[0][0]
    accs = [WindowAccumulator(T, max_lag) for _ in windows]
    with Trajectory(path, allow_incomplete=allow_incomplete) as traj:
        for strip in traj.iter_strips(windows, memory_mb=memory_mb, progress=progress,
                                      desc="msd", columns=columns):
            for k in strip.window_indices:
                accs[k].add(strip.block(*windows[k]))
                if not np.all(np.isfinite(accs[k].sumsq)):
                    raise InputError(
                        f"{traj.path}: /weights has NaN or inf in steps [{windows[k][0]}, "
                        f"{windows[k][1]}), dimensions [{strip.c0}, {strip.c1})")
    return np.stack([a.acf for a in accs]), np.stack([a.sumsq for a in accs])


@dataclass
class PowerLawFit:
    """MSD ≈ K · τ^α fitted by least squares of log10 MSD on log10 τ."""

    alpha: float
    log10_K: float
    rmse: float  # root-mean-square residual in log10 units
    lag_min: int
    lag_max: int
    n_points: int


def fit_power_law(lags, values, lag_min: int | None = None, lag_max: int | None = None) -> PowerLawFit:
    """Least-squares fit of log10(values) = log10 K + α log10(lags) over lag_min ≤ lag ≤ lag_max.

    Points with values ≤ 0 are left out (their log is undefined). Raises
    InputError when fewer than 3 points remain.
    """
    lags = np.asarray(lags, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    mask = values > 0
    if lag_min is not None:
        mask &= lags >= lag_min
    if lag_max is not None:
        mask &= lags <= lag_max
    if mask.sum() < 3:
        raise InputError(f"power-law fit needs at least 3 positive points, got {int(mask.sum())}")
    x = np.log10(lags[mask])
    y = np.log10(values[mask])
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    return PowerLawFit(alpha=float(coef[1]), log10_K=float(coef[0]),
                       rmse=float(np.sqrt(np.mean(resid ** 2))),
                       lag_min=int(lags[mask][0]), lag_max=int(lags[mask][-1]),
                       n_points=int(mask.sum()))
