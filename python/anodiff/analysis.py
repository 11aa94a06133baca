"""Window analysis of a run file in one pass: regimes, fractal path, fractal landscape.

For every window [t_w, t_w+T) (several T at once) this module streams
`/weights` once, in column strips, and accumulates per window sums over
dimensions, all float64 and additive over dimension shards:

* the Gram matrix ``G = Xc Xcᵀ`` of the window's points centred on its first
  row (every ``pair_stride``-th step; P = (T-1)//pair_stride + 1 points),
* the step norms ``|w(t+1) - w(t)|²`` (every step, exact from differences),
* the FFT autocorrelation sums of the MSD engine (`anodiff.msd`) when the
  Gram matrix does not cover every step (``pair_stride > 1``) and, with
  ``by_layer``, per parameter tensor.

Precision of the Gram matrix. The time-averaged MSD comes from its diagonal
sums (``Σ_t Δr²(t, t+τ)``), so with ``pair_stride = 1`` no separate FFT pass is
made (with ``pair_stride > 1`` the MSD comes from the FFT accumulator over
every step) and the Gram matrix must meet the MSD contract (≤ 1e-6 relative).
Plain float32 products of the window centred on its first row cannot: their
rounding is ~6e-8·|x_s|·|x_t| while the short distances G_ss + G_tt - 2G_st of
a nearly ballistic window are ~|x|²/T², no correct digit at T = 1000.

``gram_precision='float32'`` (default) therefore centres each block of
``GRAM_BLOCK`` = 16 consecutive points on its own middle point C_I and forms in
float32 (one BLAS SSYRK per ≤16384-dimension piece, float64 sums across
pieces) only products of small vectors: z_s·z_t with z_s = x_s - C_I(s), and
z_s·(C_{m+1} - C_m); the Gram matrix of the block centres (P/16 points) is
float64, and the squared distances of points up to ``band`` = 8 apart are exact
from differences. Every float32 rounding is then relative to |z|² ≲ Δr² of
half a block, not to |x|², and `_core.block_gram_assemble` puts the float64
Gram matrix of the window (centred on its first row) back together:
measured ≤ 2.4e-7 relative on the MSD and ≤ 5e-7 on any pair distance at
T = 1000 on ballistic, Brownian and offset-1e3 windows (bench/accuracy_gram.py;
the tests hold them to 1e-6 and 3e-6), for about the cost of one float32
SYRK. ``gram_precision='float64'`` forms every product in float64 (DSYRK,
~1e-12 relative, about twice the time).

Threads: the pass splits each strip's dimensions into pieces that run
concurrently (``anodiff.get_num_threads()`` of them), each with
single-threaded kernels and BLAS; while it runs, BLAS is limited to one
thread process-wide (threadpoolctl), then restored. See docs/DEVELOPING.md
for why not threaded BLAS. Windows so long that a (P, P) float32 product per
thread would pass PIECE_PRODUCTS_BYTES run one piece at a time with threaded
kernels and BLAS instead.

`accumulate_columns` runs the pass over a column range and returns
`AnalysisPartials` (mergeable with ``+``/`merge`); `finish` turns summed
partials into an `AnalysisResult` (fits, pair kernels); `analyze` does both,
finishing each group of windows as soon as its last strip has been read so
that only one group's Gram matrices are held at a time.

Units: steps for t_w, T, lags, τ0, t0; weight units for Δs, Δr, transverse
distances; squared weight units for MSD and Δr²; the loss's units for ΔL.
"""
from __future__ import annotations

import concurrent.futures as futures
import contextlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from . import _core
from ._config import get_num_threads
from .errors import InputError
from .geometry import (TRANSVERSE_ZERO, BinnedCurve, fit_two_segments, moving_average,
                       moving_variance, pair_measures, try_fit, contour_positions)
from .msd import fit_power_law, msd_from_sums

GRAM_CHUNK_BYTES = 96 * 2**20  # one centred chunk (float64 or float32)
GRAM_CHUNK_MAX_COLS = 16384    # wide products: BLAS SYRK is ~15 % slower on 4096 columns
GRAM_BLOCK = 16                # points per block of the float32 Gram products
PIECE_PRODUCTS_BYTES = 512 * 2**20  # (P, P) products of the pieces running at once


# ---------------------------------------------------------------------------
# Accumulation (additive over dimension shards)
# ---------------------------------------------------------------------------

@dataclass
class WindowSums:
    """Float64 sums over a set of dimensions for one window [t_w, t_w+T).

    ``gram`` (P, P), Fortran order, symmetric (readers use its upper triangle):
    x_s·x_t (float64 products, points centred on the window's first row) or,
    with gram_precision='float32', z_s·z_t of block-centred points (see the
    module docstring), with ``cross`` (P, nb-1) = z_s·(C_{m+1} - C_m) and
    ``centres_gram`` (nb, nb) the float64 Gram matrix of the block centres
    (centred on the window's first row), ``block`` points per block;
    ``band_sq[p, k-1]`` (gram_precision='float32' only) the exact squared distance
    of points p and p+k, k = 1…band;
    ``step_sq[t] = Σ_i (w_i(t+1) - w_i(t))²`` for t < T-1 (last entry unused);
    None when the band of consecutive steps already holds them (``band_sq[:, 0]``);
    ``acf``/``sumsq`` the MSD engine's sums (see `anodiff.msd.WindowAccumulator`),
    ``layer_acf``/``layer_sumsq`` the same per layer (n_layers, T).
    """

    t_w: int
    T: int
    stride: int
    step_sq: np.ndarray | None
    gram: np.ndarray | None = None
    band_sq: np.ndarray | None = None
    cross: np.ndarray | None = None
    centres_gram: np.ndarray | None = None
    block: int = 0
    acf: np.ndarray | None = None
    sumsq: np.ndarray | None = None
    layer_acf: np.ndarray | None = None
    layer_sumsq: np.ndarray | None = None
    n_dims: int = 0

    def merge(self, other: "WindowSums") -> "WindowSums":
        if (self.t_w, self.T, self.stride) != (other.t_w, other.T, other.stride):
            raise InputError("cannot merge sums of different windows")
        if self.block != other.block:
            raise InputError("cannot merge window sums of different Gram block sizes")
        for name in ("step_sq", "gram", "band_sq", "cross", "centres_gram", "acf", "sumsq",
                     "layer_acf", "layer_sumsq"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                raise InputError(f"cannot merge window sums: {name} present in only one of them")
            if a is not None:
                a += b
        self.n_dims += other.n_dims
        return self


@dataclass
class AnalysisPartials:
    """Per-window sums of a pass over some dimensions of a run file, plus what `finish` needs."""

    source: str
    n_steps: int
    n_dims_total: int
    columns: list[tuple[int, int]]
    windows: list[WindowSums | None]
    pair_stride: int
    pairs: bool
    layer_names: list[str] | None
    loss: np.ndarray | None
    loss_name: str | None
    msl: bool
    coordinate_subset: bool
    complete: bool
    layer_dims: np.ndarray | None = None  # columns of each layer in this pass
    gram_precision: str = "float32"

    def merge(self, other: "AnalysisPartials") -> "AnalysisPartials":
        """Add the sums of another shard (disjoint columns) of the same analysis."""
        keys = [(w.t_w, w.T) for w in self.windows if w is not None]
        if keys != [(w.t_w, w.T) for w in other.windows if w is not None] or \
                self.pair_stride != other.pair_stride or self.layer_names != other.layer_names:
            raise InputError("cannot merge partials of different analyses")
        for a, b in zip(self.windows, other.windows):
            if a is not None and b is not None:
                a.merge(b)
        self.columns = sorted(self.columns + other.columns)
        if self.layer_dims is not None:
            self.layer_dims = self.layer_dims + other.layer_dims
        return self

    __iadd__ = merge

    @property
    def n_dims(self) -> int:
        return sum(c1 - c0 for c0, c1 in self.columns)


@dataclass
class _LayerMap:
    names: list[str]
    runs: list[tuple[int, int, int]]  # (c0, c1, layer id) over columns of /weights


def _layer_map(traj) -> _LayerMap:
    f = traj.file
    if "layout" not in f:
        raise InputError(f"{traj.path}: --by-layer needs /layout (parameter names, offsets, sizes)")
    lay = f["layout"]
    for key in ("names", "offsets", "sizes"):
        if key not in lay:
            raise InputError(f"{traj.path}: /layout/{key} is missing")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in lay["names"][()]]
    offsets = np.asarray(lay["offsets"][()], dtype=np.int64)
    sizes = np.asarray(lay["sizes"][()], dtype=np.int64)
    if not (len(names) == offsets.size == sizes.size) or np.any(sizes < 0):
        raise InputError(f"{traj.path}: /layout names, offsets and sizes do not match")
    if "weights_index" in f:
        flat = np.asarray(f["weights_index"][()], dtype=np.int64)
        if flat.shape != (traj.n_dims,):
            raise InputError(f"{traj.path}: /weights_index has shape {flat.shape}, expected "
                             f"({traj.n_dims},)")
    else:
        flat = np.arange(traj.n_dims, dtype=np.int64)
    order = np.argsort(offsets, kind="stable")
    pos = np.searchsorted(offsets[order], flat, side="right") - 1
    lid = np.full(flat.shape, len(names), dtype=np.int64)  # "unassigned" by default
    ok = pos >= 0
    cand = order[np.clip(pos, 0, None)]
    ok &= flat < offsets[cand] + sizes[cand]
    lid[ok] = cand[ok]
    if np.any(~ok):
        names = names + ["(not in /layout)"]
    cuts = np.flatnonzero(np.diff(lid)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [flat.size]))
    return _LayerMap(names, [(int(a), int(b), int(lid[a])) for a, b in zip(starts, ends)])


def _read_loss(traj, name: str) -> np.ndarray:
    f = traj.file
    if name not in f:
        raise InputError(f"{traj.path}: /{name} is missing (needed for the pair MSL and loss "
                         f"statistics; pass --no-msl to skip them)")
    ds = f[name]
    if len(ds.shape) != 1 or ds.shape[0] < traj.n_steps:
        raise InputError(f"{traj.path}: /{name} has shape {ds.shape}, expected ({traj.n_steps},)")
    loss = np.asarray(ds[: traj.n_steps], dtype=np.float64)
    if not np.all(np.isfinite(loss)):
        bad = int(np.flatnonzero(~np.isfinite(loss))[0])
        raise InputError(f"{traj.path}: /{name} has NaN or inf (first at step {bad})")
    return loss


def _as_T_list(T) -> list[int]:
    Ts = [int(T)] if np.isscalar(T) else [int(t) for t in T]
    if not Ts:
        raise InputError("at least one window length T is needed")
    if len(set(Ts)) != len(Ts):
        raise InputError(f"window lengths repeat: {Ts}")
    return Ts


def _gram_chunk_cols(P: int, itemsize: int = 8) -> int:
    """Dimensions per product of P points: as many as GRAM_CHUNK_BYTES allow, ≤ GRAM_CHUNK_MAX_COLS."""
    return int(max(256, min(GRAM_CHUNK_MAX_COLS, GRAM_CHUNK_BYTES // (itemsize * max(P, 1)))))


def _block_layout(P: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, sizes and centre points (the middle point of each block) of P points in blocks."""
    starts = np.arange(0, P, block)
    sizes = np.minimum(block, P - starts)
    return starts, sizes, starts + sizes // 2


class _Scratch(threading.local):
    """Per-thread reusable float32 work arrays (allocating ~70 MB per product costs)."""

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        arrays = self.__dict__.setdefault("arrays", {})
        a = arrays.get(name)
        if a is None or a.shape != shape:
            a = arrays[name] = np.empty(shape, dtype=np.float32)
        return a


def _block_products(ws: WindowSums, rows: np.ndarray, scratch: _Scratch, lock) -> None:
    """Add the float32 block-centred products of points ``rows`` (P, w) to ``ws``.

    z_s = x_s - C_I(s) for the centre C_I of each block of ``ws.block`` points and
    ΔC_m = C_{m+1} - C_m: one float32 SYRK of the stacked rows [z; ΔC] gives both
    ``ws.gram += z zᵀ`` and ``ws.cross += z ΔCᵀ``; ``ws.centres_gram += (C - x_0)(C -
    x_0)ᵀ`` is float64. The float32 products span ≤ w dimensions; sums are float64.
    """
    P, k = rows.shape
    B = ws.block
    starts, sizes, centres = _block_layout(P, B)
    nq = starts.size - 1
    full = P // B
    C = rows[centres]
    stacked = scratch.get("stacked", (P + nq, k))
    Z = stacked[:P]
    np.subtract(rows[:full * B].reshape(full, B, k), C[:full, None, :],
                out=Z[:full * B].reshape(full, B, k))
    if full < starts.size:
        np.subtract(rows[full * B:], C[-1], out=Z[full * B:])
    np.subtract(C[1:], C[:-1], out=stacked[P:])
    products = np.matmul(stacked, stacked.T, out=scratch.get("products", (P + nq, P + nq)))
    Cg = np.subtract(C, rows[0], dtype=np.float64)
    centres_gram = Cg @ Cg.T
    with lock:
        ws.gram += products.T[:P, :P]  # symmetric; .T matches the Fortran order of ws.gram
        ws.cross += products[:P, P:]
        ws.centres_gram += centres_gram


def _float64_products(ws: WindowSums, rows: np.ndarray, lock) -> None:
    """Add x xᵀ of points ``rows`` (P, w) centred on the first one, in float64, to ``ws.gram``."""
    X = np.subtract(rows, rows[0], dtype=np.float64)
    products = X @ X.T
    with lock:
        ws.gram += products.T


def _accumulate_piece(ws: WindowSums, block: np.ndarray, pair_stride: int, layer_runs,
                      scratch: _Scratch, lock, where: str, threads: int = 1) -> None:
    """Every sum of window ``ws`` over the dimensions of ``block`` (T, w).

    Sums are formed locally and added to ``ws`` under ``lock``, so pieces of
    different dimensions can run concurrently (then with ``threads`` = 1).
    ``layer_runs`` are (a, b, layer id) column ranges of the block; ``where``
    names the block in errors.
    """
    if ws.band_sq is not None:
        band = np.zeros_like(ws.band_sq)
        _core.band_sqdist_accumulate(block, pair_stride, band, threads)
    if ws.step_sq is not None:
        step = np.zeros_like(ws.step_sq)
        _core.band_sqdist_accumulate(block, 1, step, threads)
    if not np.all(np.isfinite(band if ws.step_sq is None else step)):
        raise InputError(f"{where} has NaN or inf")
    if ws.gram is not None:
        rows = block[::pair_stride]
        if ws.cross is not None:
            _block_products(ws, rows, scratch, lock)
        else:
            _float64_products(ws, rows, lock)
    acf = sumsq = None
    if ws.layer_acf is not None:
        acf, sumsq = np.zeros_like(ws.layer_acf), np.zeros_like(ws.layer_sumsq)
        for a, b, lid in layer_runs:
            _core.msd_accumulate(block[:, a:b], acf[lid], sumsq[lid], threads)
    elif ws.acf is not None:
        acf, sumsq = np.zeros_like(ws.acf), np.zeros_like(ws.sumsq)
        _core.msd_accumulate(block, acf, sumsq, threads)
    with lock:
        if ws.band_sq is not None:
            ws.band_sq += band
        if ws.step_sq is not None:
            ws.step_sq += step
        if ws.layer_acf is not None:
            ws.layer_acf += acf
            ws.layer_sumsq += sumsq
        elif ws.acf is not None:
            ws.acf += acf
            ws.sumsq += sumsq


def _pieces(width: int, n_pieces: int, max_width: int, min_width: int = 1024) -> list[tuple[int, int]]:
    """Column ranges splitting [0, width) into ≥ n_pieces near-equal pieces of ≤ max_width
    (pieces stay ≥ min_width where the width allows)."""
    n = max(-(-width // max_width), min(n_pieces, max(1, width // min_width)))
    edges = [width * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _InlinePool:
    """The executor interface, running each task at once (one thread)."""

    def submit(self, fn, *args):
        f = futures.Future()
        try:
            f.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            f.set_exception(exc)
        return f

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def accumulate_columns(path, T=1000, tw_step: int | None = None, *,
                       columns: tuple[int, int] | None = None, pair_stride: int = 1,
                       pairs: bool = True, by_layer: bool = False, loss: str = "loss",
                       msl: bool = True, t_start: int = 0, t_stop: int | None = None,
                       allow_incomplete: bool = False, memory_mb: float = 256.0,
                       progress: bool = False, gram_precision: str = "float32", band: int = 8,
                       on_window: Callable[[int, WindowSums], bool] | None = None,
                       ) -> AnalysisPartials:
    """One pass over dimensions [c0, c1) of a run file: the per-window sums of every window.

    Windows are [t_w, t_w+T) for each T given and t_w = t_start, t_start +
    tw_step, … (tw_step defaults to T). The returned partials of disjoint
    column ranges add up (`AnalysisPartials.merge`) to those of all columns;
    `finish` turns them into results.

    ``gram_precision='float32'`` (default) forms the Gram products of
    block-centred points in float32 (float64 sums across chunks) and the squared
    distances of points up to ``band`` apart exactly from differences;
    'float64' forms every product in float64. See the module docstring.

    ``on_window(k, sums)`` is called as soon as window k has seen every column
    of the range; when it returns True the sums are dropped from the partials
    (``partials.windows[k] = None``), which bounds memory for long runs.
    """
    from .io import Trajectory  # noqa: PLC0415

    Ts = _as_T_list(T)
    pair_stride = int(pair_stride)
    if pair_stride < 1:
        raise InputError(f"pair stride must be a positive integer, got {pair_stride}")
    if gram_precision not in ("float64", "float32"):
        raise InputError(f"gram_precision must be 'float64' or 'float32', got {gram_precision!r}")
    band = int(band)
    if band < 1:
        raise InputError(f"band must be a positive integer, got {band}")
    if loss not in ("loss", "eval_loss"):
        raise InputError(f"loss must be 'loss' or 'eval_loss', got {loss!r}")
    nt = get_num_threads()
    with Trajectory(path, allow_incomplete=allow_incomplete) as traj:
        col0, col1 = (0, traj.n_dims) if columns is None else (int(columns[0]), int(columns[1]))
        if not 0 <= col0 < col1 <= traj.n_dims:
            raise InputError(f"{traj.path}: column range [{col0}, {col1}) is not inside the "
                             f"{traj.n_dims} dimensions of /weights")
        windows: list[tuple[int, int]] = []
        for Tk in Ts:
            step = Tk if tw_step is None else int(tw_step)
            if pairs and pair_stride > Tk - 1:
                raise InputError(f"pair stride {pair_stride} leaves fewer than 2 points in a "
                                 f"window of T={Tk} steps")
            windows += [(s, s + Tk) for s in traj.window_starts(Tk, step, t_start, t_stop)]
        loss_arr = _read_loss(traj, loss) if (msl or loss in traj.file) else None
        loss_name = loss if loss_arr is not None else None
        layers = _layer_map(traj) if by_layer else None
        n_layers = len(layers.names) if layers else 0
        layer_dims = None
        if layers:
            runs = [(max(a, col0), min(b, col1), lid) for a, b, lid in layers.runs
                    if b > col0 and a < col1]
            layer_dims = np.zeros(n_layers, dtype=np.int64)
            for a, b, lid in runs:
                layer_dims[lid] += b - a
        use_fft = (not pairs) or pair_stride > 1 or by_layer
        sums: list[WindowSums | None] = []
        for s, e in windows:
            Tk = e - s
            P = (Tk - 1) // pair_stride + 1
            blocked = pairs and gram_precision == "float32"
            # The band's first column holds the step norms when every step is a point.
            ws = WindowSums(t_w=s, T=Tk, stride=pair_stride,
                            step_sq=None if blocked and pair_stride == 1 else np.zeros((Tk, 1)))
            if pairs:
                ws.gram = np.zeros((P, P), order="F")
                if blocked:
                    nb = len(_block_layout(P, GRAM_BLOCK)[0])
                    ws.block = GRAM_BLOCK
                    ws.band_sq = np.zeros((P, min(band, P - 1)))
                    ws.cross = np.zeros((P, nb - 1))
                    ws.centres_gram = np.zeros((nb, nb))
            if use_fft and not layers:
                ws.acf, ws.sumsq = np.zeros(Tk), np.zeros(Tk)
            if layers:
                ws.layer_acf, ws.layer_sumsq = np.zeros((n_layers, Tk)), np.zeros((n_layers, Tk))
            sums.append(ws)
        scratch = _Scratch()
        lock = threading.Lock()
        # Concurrent pieces each hold a (P, P) product: with long windows, one piece at
        # a time (threaded kernels and BLAS) keeps memory at one product.
        p_max = max((w.gram.shape[0] for w in sums if w.gram is not None), default=0)
        product_bytes = (4 * (p_max + p_max // GRAM_BLOCK) ** 2 if gram_precision == "float32"
                         else 8 * p_max ** 2)
        concurrent = nt > 1 and nt * product_bytes <= PIECE_PRODUCTS_BYTES
        pool = futures.ThreadPoolExecutor(nt, thread_name_prefix="anodiff-analyze") if concurrent \
            else _InlinePool()
        piece_threads = 1 if concurrent else nt

        def finish_strip(strip, tasks):
            for task in tasks:
                task.result()
            for k in strip.window_indices:
                ws = sums[k]
                ws.n_dims += strip.c1 - strip.c0
                if strip.c1 == col1 and on_window is not None and on_window(k, ws):
                    sums[k] = None

        try:
            strips = traj.iter_strips(windows, memory_mb=memory_mb, progress=progress,
                                      desc="analyze", columns=(col0, col1),
                                      min_width=GRAM_CHUNK_MAX_COLS if pairs else 0,
                                      prefetch="auto")
            # Threads over dimension pieces, each running single-threaded BLAS: threaded
            # BLAS would spin-wait between calls and slow every other kernel and the reads.
            with threadpool_limits(1, user_api="blas") if concurrent else contextlib.nullcontext():
                previous = None
                for strip in strips:
                    tasks = []
                    n_win = len(strip.window_indices)
                    for k in strip.window_indices:
                        s, e = windows[k]
                        ws = sums[k]
                        block = strip.block(s, e)
                        P = ws.gram.shape[0] if ws.gram is not None else 1
                        for a, b in _pieces(block.shape[1], -(-2 * nt // n_win) if concurrent else 1,
                                            _gram_chunk_cols(P, 4 if ws.cross is not None else 8)):
                            c0, c1 = strip.c0 + a, strip.c0 + b
                            lr = [(max(ra, c0) - c0, min(rb, c1) - c0, lid) for ra, rb, lid in runs
                                  if rb > c0 and ra < c1] if layers else None
                            where = (f"{traj.path}: /weights in steps [{s}, {e}), "
                                     f"dimensions [{c0}, {c1})")
                            tasks.append(pool.submit(_accumulate_piece, ws, block[:, a:b], pair_stride,
                                                     lr, scratch, lock, where, piece_threads))
                    # The previous strip's windows finish (and the next strip is read) while
                    # this strip's pieces run.
                    if previous is not None:
                        finish_strip(*previous)
                    previous = (strip, tasks)
                if previous is not None:
                    finish_strip(*previous)
        except OSError as exc:
            raise InputError(f"{traj.path}: cannot read /weights ({str(exc).splitlines()[0]}); "
                             "truncated or half-written file?") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return AnalysisPartials(
            source=str(traj.path), n_steps=traj.n_steps, n_dims_total=traj.n_dims,
            columns=[(col0, col1)], windows=sums, pair_stride=pair_stride, pairs=pairs,
            layer_names=layers.names if layers else None, loss=loss_arr, loss_name=loss_name,
            msl=msl, coordinate_subset=bool(traj.attrs.get("subset", False)
                                            or "weights_index" in traj.file),
            complete=traj.complete, layer_dims=layer_dims, gram_precision=gram_precision)


# ---------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------

@dataclass
class MsdRegimes:
    """Power-law fits of one MSD curve (log10 least squares, RMSE in log10 units)."""

    alpha: float | None
    rmse: float | None
    tau0: int | None
    alpha1: float | None
    alpha2: float | None
    reasons: dict[str, str]


def fit_msd_regimes(lags, msd, rmse_threshold: float = 0.03, min_points: int = 10) -> MsdRegimes:
    """α over all lags; τ0 = smallest τ' whose fit over [τ', T-1] has RMSE < threshold;
    α1 over τ < τ0 and α2 over τ ≥ τ0 (paper Eq. 5).

    The tail fits need at least `min_points` lags, so τ0 ≤ T - min_points.
    """
    lags = np.asarray(lags, dtype=np.float64)
    msd = np.asarray(msd, dtype=np.float64)
    reasons: dict[str, str] = {}
    m = np.isfinite(msd) & (msd > 0)
    if m.sum() < 3:
        why = f"MSD has {int(m.sum())} positive values, a fit needs at least 3"
        return MsdRegimes(None, None, None, None, None,
                          {k: why for k in ("alpha", "rmse", "tau0", "alpha1", "alpha2")})
    whole = fit_power_law(lags[m], msd[m])
    x, y = np.log10(lags[m]), np.log10(msd[m])
    n = x.size
    # Suffix sums -> closed-form least squares over x[j:], for every j at once.
    def suffix(v):
        return np.cumsum(v[::-1])[::-1]
    N = np.arange(n, 0, -1, dtype=np.float64)
    Sx, Sy, Sxx, Sxy, Syy = suffix(x), suffix(y), suffix(x * x), suffix(x * y), suffix(y * y)
    vx = Sxx - Sx * Sx / N
    cxy = Sxy - Sx * Sy / N
    vy = Syy - Sy * Sy / N
    with np.errstate(invalid="ignore", divide="ignore"):
        sse = np.where(vx > 0, vy - cxy * cxy / vx, np.inf)
        rmse = np.sqrt(np.maximum(sse, 0.0) / N)
    ok = (rmse < rmse_threshold) & (N >= max(3, min_points))
    tau0 = alpha1 = alpha2 = None
    if not ok.any():
        reasons["tau0"] = (f"no τ' leaves a fit over [τ', {int(lags[-1])}] with RMSE < "
                           f"{rmse_threshold} and at least {max(3, min_points)} lags")
        reasons["alpha1"] = reasons["alpha2"] = "no crossover τ0"
    else:
        j = int(np.argmax(ok))
        tau0 = int(lags[m][j])
        alpha2 = fit_power_law(lags[m][j:], msd[m][j:]).alpha
        if j < 3:
            reasons["alpha1"] = (f"{j} lags below τ0={tau0}, a fit needs at least 3"
                                 + (" (single power law over the whole range)" if j == 0 else ""))
        else:
            alpha1 = fit_power_law(lags[m][:j], msd[m][:j]).alpha
    return MsdRegimes(whole.alpha, whole.rmse, tau0, alpha1, alpha2, reasons)


def log_derivative(lags, msd, dtau: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """β(τ) = [ln MSD(τ+Δτ) - ln MSD(τ)] / [ln(τ+Δτ) - ln τ] (paper Eq. 6).

    Returns (τ, β) for τ = lags[0] … lags[-1] - Δτ (lags consecutive); NaN where
    an MSD value is not positive.
    """
    lags = np.asarray(lags, dtype=np.float64)
    msd = np.asarray(msd, dtype=np.float64)
    dtau = int(dtau)
    if dtau < 1 or lags.size <= dtau:
        return lags[:0], np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lm = np.where(msd > 0, np.log(np.where(msd > 0, msd, 1.0)), np.nan)
        beta = (lm[dtau:] - lm[:-dtau]) / (np.log(lags[dtau:]) - np.log(lags[:-dtau]))
    return lags[:-dtau], beta


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

SUMMARY_FIELDS = ("t_w", "T", "alpha", "alpha1", "alpha2", "tau0", "rmse", "lambda",
                  "lambda_short", "lambda_long", "crossover_l", "D_f", "D_f_short", "D_f_long",
                  "msl_2H", "transverse_exponent", "loss_abs_dl_mean", "loss_moving_var_mean")


@dataclass
class LayerMsd:
    name: str
    n_dims: int
    msd: np.ndarray
    alpha: float | None
    rmse: float | None


@dataclass
class WindowResult:
    """Everything measured on one window [t_w, t_w+T).

    Scalars (None with a reason in ``reasons`` when the fit cannot be made):
    ``alpha``, ``rmse`` (whole-lag fit), ``tau0``, ``alpha1``, ``alpha2``;
    ``lambda_all`` (JSON "lambda", Δr² ∝ Δs^λ over all bins), ``lambda_short``,
    ``lambda_long``, ``crossover_l`` (Δs at the best two-segment split),
    ``D_f = 2/λ`` (and ``D_f_short``, ``D_f_long``); ``msl_2H``;
    ``transverse_exponent`` (⟨h⟩ ∝ Δr^ν).
    Curves: ``lags``, ``msd``, ``beta_tau``, ``beta``; binned ``contour``
    (Δs → ⟨Δr²⟩), ``transverse`` (Δr → ⟨h⟩), ``msl`` (Δr → ⟨ΔL²⟩); the raw
    path from the window start ``path_ds``, ``path_dr2`` (Δs, Δr² of (t_w, t_w+k),
    k = 1…T-1) and its moving average over ``smooth`` steps ``path_ds_smooth``,
    ``path_dr2_smooth``; ``abs_dl`` = |L(t+1) - L(t)| in the window.
    """

    t_w: int
    T: int
    pair_stride: int
    lags: np.ndarray
    msd: np.ndarray
    beta_tau: np.ndarray
    beta: np.ndarray
    alpha: float | None = None
    rmse: float | None = None
    tau0: int | None = None
    alpha1: float | None = None
    alpha2: float | None = None
    lambda_all: float | None = None
    lambda_short: float | None = None
    lambda_long: float | None = None
    crossover_l: float | None = None
    D_f: float | None = None
    D_f_short: float | None = None
    D_f_long: float | None = None
    msl_2H: float | None = None
    transverse_exponent: float | None = None
    loss_abs_dl_mean: float | None = None
    loss_moving_var_mean: float | None = None
    contour: BinnedCurve | None = None
    transverse: BinnedCurve | None = None
    msl: BinnedCurve | None = None
    path_ds: np.ndarray | None = None
    path_dr2: np.ndarray | None = None
    path_ds_smooth: np.ndarray | None = None
    path_dr2_smooth: np.ndarray | None = None
    step_norm: np.ndarray | None = None
    abs_dl: np.ndarray | None = None
    layers: list[LayerMsd] | None = None
    reasons: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        out = {}
        for key in SUMMARY_FIELDS:
            value = getattr(self, "lambda_all" if key == "lambda" else key)
            out[key] = _json_number(value)
        out["reasons"] = {k: v for k, v in self.reasons.items()
                          if out.get("lambda" if k == "lambda_all" else k) is None}
        if self.layers is not None:
            out["layers"] = [{"name": ly.name, "n_dims": ly.n_dims, "alpha": _json_number(ly.alpha),
                              "rmse": _json_number(ly.rmse)} for ly in self.layers]
        return out


def _json_number(v):
    if v is None:
        return None
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class AnalysisResult:
    """Result of `analyze`: ``t0`` (of the first T), ``t0_by_T``, ``windows``, run metadata."""

    t0: int | None
    windows: list[WindowResult]
    t0_by_T: dict[int, int | None]
    t0_reason: dict[int, str]
    loss_moving_var: np.ndarray | None
    meta: dict

    def window(self, t_w: int, T: int | None = None) -> WindowResult:
        for w in self.windows:
            if w.t_w == t_w and (T is None or w.T == T):
                return w
        raise KeyError((t_w, T))

    def summary(self) -> dict:
        return {
            "t0": self.t0,
            "t0_by_T": {str(k): v for k, v in self.t0_by_T.items()},
            "t0_reason": {str(k): v for k, v in self.t0_reason.items()},
            **self.meta,
            "windows": [w.summary() for w in self.windows],
        }

    def save(self, out_dir) -> tuple[Path, Path]:
        """Write out_dir/results.h5 (every curve) and out_dir/summary.json."""
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            h5 = out / "results.h5"
            _write_h5(self, h5)
            js = out / "summary.json"
            js.write_text(json.dumps(self.summary(), indent=1, allow_nan=False))
        except OSError as exc:
            raise InputError(f"{out}: cannot write results ({exc})") from None
        return h5, js


def _write_h5(res: AnalysisResult, path: Path) -> None:
    import h5py  # noqa: PLC0415

    def curve(g, name, c: BinnedCurve | None):
        if c is None:
            return
        sub = g.create_group(name)
        for key in ("edges", "x", "y", "count"):
            sub.create_dataset(key, data=getattr(c, key))

    with h5py.File(path, "w") as f:
        for key, value in res.meta.items():
            if value is not None and not isinstance(value, (dict, list)):
                f.attrs[key] = value
        f.attrs["units"] = ("t_w, T, lags, tau0, t0 in steps; msd, dr2 in squared weight units; "
                            "ds, dr, transverse in weight units; msl in squared loss units")
        for T, t0 in res.t0_by_T.items():
            g = f.require_group(f"by_T/{T}")
            g.attrs["t0"] = -1 if t0 is None else t0
            ws = [w for w in res.windows if w.T == T]
            g.create_dataset("t_w", data=np.array([w.t_w for w in ws], dtype=np.int64))
            for key in ("alpha", "rmse", "tau0", "alpha1", "alpha2", "lambda_all", "D_f", "msl_2H",
                        "transverse_exponent"):
                g.create_dataset(key, data=np.array(
                    [np.nan if getattr(w, key) is None else getattr(w, key) for w in ws], dtype=float))
        if res.loss_moving_var is not None:
            f.create_dataset("loss/moving_var", data=res.loss_moving_var)
            f["loss/moving_var"].attrs["note"] = ("population variance of the loss over steps "
                                                  "[t, t + window) for t = 0, 1, …")
        for i, w in enumerate(res.windows):
            g = f.create_group(f"windows/{i:05d}")
            for key, value in w.summary().items():
                if key in ("reasons", "layers"):
                    continue
                g.attrs[key] = np.nan if value is None else value
            g.attrs["pair_stride"] = w.pair_stride
            g.attrs["reasons"] = json.dumps(w.summary()["reasons"])
            for key in ("lags", "msd", "beta_tau", "beta", "path_ds", "path_dr2", "path_ds_smooth",
                        "path_dr2_smooth", "step_norm", "abs_dl"):
                v = getattr(w, key)
                if v is not None:
                    g.create_dataset(key, data=v)
            curve(g, "contour", w.contour)
            curve(g, "transverse", w.transverse)
            curve(g, "msl", w.msl)
            if w.layers:
                g.create_dataset("layers/names", data=np.array([ly.name for ly in w.layers], dtype="S"))
                g.create_dataset("layers/n_dims", data=np.array([ly.n_dims for ly in w.layers]))
                g.create_dataset("layers/msd", data=np.stack([ly.msd for ly in w.layers]))
                g.create_dataset("layers/alpha", data=np.array(
                    [np.nan if ly.alpha is None else ly.alpha for ly in w.layers]))


# ---------------------------------------------------------------------------
# Finishing
# ---------------------------------------------------------------------------

@dataclass
class FinishOptions:
    rmse_threshold: float = 0.03
    min_fit_points: int = 10
    beta_dtau: int = 20
    n_bins: int = 40
    transverse: bool = True
    msl_range: tuple[float, float] | str | None = None
    smooth: int = 40
    moving_var_window: int = 100


def window_gram(ws: WindowSums) -> np.ndarray:
    """The window's float64 Gram matrix (P, P), points centred on its first point.

    From float64 products: the upper triangle mirrored. From block-centred
    float32 products (``ws.cross`` present): assembled by
    `_core.block_gram_assemble` (see the module docstring). Returned
    C-contiguous and symmetric; ``ws`` is left unchanged.
    """
    if ws.cross is None:
        up = np.triu(ws.gram)
        return np.ascontiguousarray(up + np.triu(up, 1).T)
    G = np.array(ws.gram, order="F", copy=True)
    _core.block_gram_assemble(G, ws.block, ws.cross, ws.centres_gram, ws.band_sq,
                              get_num_threads())
    return G.T  # symmetric: the transpose of the Fortran array is the C-ordered matrix


def _msl_bounds(curve: BinnedCurve, msl_range) -> tuple[float | None, float | None]:
    if msl_range is None:
        return None, None
    if isinstance(msl_range, str):
        if msl_range != "upper":
            raise InputError(f"msl_range must be None, 'upper' or (lo, hi), got {msl_range!r}")
        x, _ = curve.populated()
        if x.size == 0:
            return None, None
        return float(np.sqrt(x.min() * x.max())), None
    lo, hi = (float(v) for v in msl_range)
    if not 0 <= lo < hi:
        raise InputError(f"MSL Δr range must satisfy 0 <= lo < hi, got ({lo}, {hi})")
    return lo, hi


def finish_window(ws: WindowSums, parts: AnalysisPartials, opts: FinishOptions,
                  moving_var: np.ndarray | None = None) -> WindowResult:
    """Fits and pair kernels of one window from its summed sums."""
    T, stride = ws.T, ws.stride
    reasons: dict[str, str] = {}
    G = window_gram(ws) if ws.gram is not None else None
    # The FFT sums, when the pass made them (by layer), are exact to float64 rounding:
    # prefer them to the Gram matrix's diagonals.
    if ws.layer_acf is not None:
        acf, sumsq = ws.layer_acf.sum(axis=0), ws.layer_sumsq.sum(axis=0)
    elif ws.acf is not None:  # always made when the Gram matrix skips steps or is absent
        acf, sumsq = ws.acf, ws.sumsq
    else:
        sumsq = np.diagonal(G).copy()
        acf = np.array([np.trace(G, offset=k) for k in range(T)])
    lags, msd = msd_from_sums(acf, sumsq)
    if not np.all(np.isfinite(msd)):
        raise InputError(f"{parts.source}: /weights has NaN or inf in window t_w={ws.t_w}")
    reg = fit_msd_regimes(lags, msd, opts.rmse_threshold, opts.min_fit_points)
    reasons.update(reg.reasons)
    btau, beta = log_derivative(lags, msd, opts.beta_dtau)
    res = WindowResult(t_w=ws.t_w, T=T, pair_stride=stride, lags=lags, msd=msd, beta_tau=btau,
                       beta=beta, alpha=reg.alpha, rmse=reg.rmse, tau0=reg.tau0,
                       alpha1=reg.alpha1, alpha2=reg.alpha2)
    step_sq = (ws.band_sq if ws.step_sq is None else ws.step_sq)[: T - 1, 0]
    res.step_norm = np.sqrt(np.maximum(step_sq, 0.0))
    contour_all = contour_positions(step_sq, 1)
    res.path_ds = contour_all[1:]
    res.path_dr2 = sumsq[1:].copy()
    res.path_ds_smooth = moving_average(res.path_ds, opts.smooth)
    res.path_dr2_smooth = moving_average(res.path_dr2, opts.smooth)

    loss_w = None
    if parts.loss is not None:
        loss_w = parts.loss[ws.t_w: ws.t_w + T]
        res.abs_dl = np.abs(np.diff(loss_w))
        res.loss_abs_dl_mean = float(res.abs_dl.mean())
        if moving_var is not None and moving_var.size:
            seg = moving_var[ws.t_w: max(ws.t_w + 1, ws.t_w + T - opts.moving_var_window + 1)]
            res.loss_moving_var_mean = float(seg.mean()) if seg.size else None
    else:
        reasons["loss_abs_dl_mean"] = "no loss dataset read"
    if res.loss_moving_var_mean is None:
        reasons.setdefault("loss_moving_var_mean",
                           f"fewer than {opts.moving_var_window} loss values or no loss")

    if G is None:
        why = "pair measures were not computed (pairs=False)"
        for key in ("lambda_all", "lambda_short", "lambda_long", "crossover_l", "D_f", "D_f_short",
                    "D_f_long", "msl_2H", "transverse_exponent"):
            reasons[key] = why
    else:
        pts_loss = None
        if parts.msl and loss_w is not None:
            pts_loss = loss_w[::stride]
        pm = pair_measures(G, contour_all[::stride], pts_loss, n_bins=opts.n_bins,
                           transverse=opts.transverse, stride=stride)
        res.contour, res.transverse, res.msl = pm.contour, pm.transverse, pm.msl
        whole = try_fit(pm.contour.x, pm.contour.y, "Δr² vs Δs")
        res.lambda_all = whole.exponent
        if whole.reason:
            reasons["lambda_all"] = whole.reason
        two = fit_two_segments(pm.contour.x, pm.contour.y, what="Δr² vs Δs")
        res.lambda_short, res.lambda_long, res.crossover_l = (two.short.exponent, two.long.exponent,
                                                              two.crossover)
        if two.reason:
            reasons["lambda_short"] = reasons["lambda_long"] = reasons["crossover_l"] = two.reason
        for lam, key in ((res.lambda_all, "D_f"), (res.lambda_short, "D_f_short"),
                         (res.lambda_long, "D_f_long")):
            if lam is not None and lam > 0:
                setattr(res, key, 2.0 / lam)
            else:
                reasons[key] = "λ is missing or not positive"
        if pm.transverse is None:
            reasons["transverse_exponent"] = "transverse distances were not computed"
        elif not pm.max_transverse_ratio >= TRANSVERSE_ZERO:
            reasons["transverse_exponent"] = (f"transverse distance is zero within rounding "
                                              f"(max ⟨h⟩/Δr = {pm.max_transverse_ratio:.1e}): "
                                              "a straight path")
        else:
            tf = try_fit(pm.transverse.x, pm.transverse.y, "transverse distance vs Δr")
            res.transverse_exponent = tf.exponent
            if tf.reason:
                reasons["transverse_exponent"] = tf.reason
        if pm.msl is None:
            reasons["msl_2H"] = "MSL not computed (no loss or --no-msl)"
        else:
            lo, hi = _msl_bounds(pm.msl, opts.msl_range)
            mf = try_fit(pm.msl.x, pm.msl.y, "MSL vs Δr", lo, hi)
            res.msl_2H = mf.exponent
            if mf.reason:
                reasons["msl_2H"] = mf.reason
        for note in pm.notes:
            reasons.setdefault("pairs", note)

    if ws.layer_acf is not None:
        res.layers = []
        for i, name in enumerate(parts.layer_names):
            _, lm = msd_from_sums(ws.layer_acf[i], ws.layer_sumsq[i])
            f = try_fit(lags, lm, f"MSD of {name}")
            nd = 0 if parts.layer_dims is None else int(parts.layer_dims[i])
            res.layers.append(LayerMsd(name, nd, lm, f.exponent,
                                       None if f.fit is None else f.fit.rmse))
    res.reasons = reasons
    return res


def finish(partials: AnalysisPartials, *, rmse_threshold: float = 0.03, min_fit_points: int = 10,
           beta_dtau: int = 20, n_bins: int = 40, transverse: bool = True,
           msl_range=None, smooth: int = 40, moving_var_window: int = 100,
           _done: Sequence[WindowResult] | None = None) -> AnalysisResult:
    """Fits and pair measures of every window from (summed) partials.

    Parameters
    ----------
    rmse_threshold : RMSE (log10 units) below which a power law "fits" (τ0, t0).
    min_fit_points : fewest lags of the tail fit that defines τ0.
    beta_dtau : Δτ of the log-derivative β(τ) (steps).
    n_bins : log-spaced bins of Δs and Δr for the pair measures.
    transverse : compute transverse distances (O(P³) per window).
    msl_range : Δr range of the 2H fit: None (all bins), "upper" (bins above the
        geometric middle of the populated range) or (lo, hi) in weight units.
    smooth : moving-average length (steps) of the raw Δr² vs Δs path curve.
    moving_var_window : steps of the moving variance of the loss.
    """
    opts = FinishOptions(rmse_threshold, min_fit_points, beta_dtau, n_bins, transverse, msl_range,
                         smooth, moving_var_window)
    mv = _moving_var(partials, opts)
    results = list(_done or [])
    for ws in partials.windows:
        if ws is not None:
            results.append(finish_window(ws, partials, opts, mv))
    return _assemble(partials, results, opts, mv)


def _moving_var(partials: AnalysisPartials, opts: FinishOptions) -> np.ndarray | None:
    if partials.loss is None:
        return None
    return moving_variance(partials.loss, opts.moving_var_window)


def _assemble(partials: AnalysisPartials, results: list[WindowResult], opts: FinishOptions,
              mv) -> AnalysisResult:
    results.sort(key=lambda w: (w.T, w.t_w))
    Ts: list[int] = []
    for w in results:
        if w.T not in Ts:
            Ts.append(w.T)
    t0_by_T: dict[int, int | None] = {}
    t0_reason: dict[int, str] = {}
    for T in Ts:
        t0_by_T[T] = next((w.t_w for w in results if w.T == T and w.rmse is not None
                           and w.rmse < opts.rmse_threshold), None)
        if t0_by_T[T] is None:
            t0_reason[T] = (f"no window of T={T} has a single power law with RMSE < "
                            f"{opts.rmse_threshold}")
    meta = {
        "source": partials.source,
        "n_steps": partials.n_steps,
        "n_dims": partials.n_dims,
        "n_dims_total": partials.n_dims_total,
        "coordinate_subset": partials.coordinate_subset,
        "complete": partials.complete,
        "pair_stride": partials.pair_stride,
        "pair_note": (f"pair measures (contour, transverse, MSL) use steps t_w, t_w+{partials.pair_stride}, "
                      f"t_w+{2 * partials.pair_stride}, … of each window (pair stride "
                      f"{partials.pair_stride}); the MSD and contour lengths use every step")
        if partials.pair_stride > 1 else "pair measures use every step of each window",
        "gram_precision": partials.gram_precision,
        "loss_dataset": None if partials.loss_name is None else f"/{partials.loss_name}",
        "msl": bool(partials.msl),
        "rmse_threshold": opts.rmse_threshold,
        "beta_dtau": opts.beta_dtau,
        "n_bins": opts.n_bins,
        "smooth_steps": opts.smooth,
        "moving_var_window": opts.moving_var_window,
        "msl_range": opts.msl_range if not isinstance(opts.msl_range, tuple) else list(opts.msl_range),
        "crossover_estimator": "best two-segment least-squares fit of log10 ⟨Δr²⟩ vs log10 Δs",
        "T": Ts,
    }
    first = Ts[0] if Ts else None
    return AnalysisResult(t0=t0_by_T.get(first), windows=results, t0_by_T=t0_by_T,
                          t0_reason=t0_reason, loss_moving_var=mv, meta=meta)


def analyze(path, T=1000, tw_step: int | None = None, *, pair_stride: int = 1,
            by_layer: bool = False, loss: str = "loss", msl: bool = True,
            transverse: bool = True, rmse_threshold: float = 0.03, min_fit_points: int = 10,
            beta_dtau: int = 20, n_bins: int = 40, msl_range=None, smooth: int = 40,
            moving_var_window: int = 100, t_start: int = 0, t_stop: int | None = None,
            allow_incomplete: bool = False, memory_mb: float = 256.0, progress: bool = False,
            gram_precision: str = "float32", band: int = 8,
            device: str = "cpu", client=None, n_shards: int | None = None) -> AnalysisResult:
    """Every trajectory measure of each window [t_w, t_w+T) of a run file, from one pass.

    Parameters
    ----------
    path : run file (HDF5 with /weights (n_steps, d), /loss, optional /eval_loss, /layout).
    T : window length in steps, or a list of lengths (each its own set of windows).
    tw_step : steps between window starts (default: T of each set).
    pair_stride : pair measures on every s-th step of the window (the MSD and
        contour lengths always use every step).
    by_layer : per-parameter-tensor MSD and α (needs /layout).
    loss : 'loss' (minibatch loss at w_t) or 'eval_loss' (fixed-batch loss).
    msl : compute the pair MSL (needs the loss dataset).
    transverse, rmse_threshold, min_fit_points, beta_dtau, n_bins, msl_range,
    smooth, moving_var_window : see `finish`.
    t_start, t_stop : restrict the windows to steps [t_start, t_stop).
    allow_incomplete : analyse the recorded steps of a run with complete=False.
    memory_mb : budget of the two column strips in flight.
    gram_precision : 'float32' (default: float32 products of block-centred
        points, float64 sums and corrections; MSD ≤ 1e-6 and pair distances
        ~1e-6 relative, see the module docstring) or 'float64' (every product
        in float64, ~1e-12 relative, about twice the time).
    band : points apart up to which squared distances are formed exactly from
        differences (gram_precision='float32').
    device : 'cpu' (the GPU engine is a separate module).
    client : a Dask `distributed.Client` or scheduler address: the dimensions
        are split into ``n_shards`` column ranges (default 4 per worker thread)
        that the workers accumulate (`accumulate_columns`), the client merges
        the partial sums in shard order and finishes once (see anodiff.cluster).

    Returns
    -------
    AnalysisResult with ``t0`` (first t_w of the first T whose single power
    law has RMSE < rmse_threshold, or None), ``windows`` (one `WindowResult`
    each, sorted by T then t_w) and ``summary()`` / ``save(dir)``.
    """
    if device != "cpu":
        raise InputError(f"device {device!r} is not supported by anodiff.analyze here; use 'cpu'")
    opts = FinishOptions(rmse_threshold, min_fit_points, beta_dtau, n_bins, transverse, msl_range,
                         smooth, moving_var_window)
    if msl_range is not None:
        _msl_bounds(BinnedCurve(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)), msl_range)
    if client is not None:
        parts = _accumulate_on_cluster(
            client, n_shards, path, T, tw_step, pair_stride=pair_stride, by_layer=by_layer,
            loss=loss, msl=msl, t_start=t_start, t_stop=t_stop, allow_incomplete=allow_incomplete,
            memory_mb=memory_mb, gram_precision=gram_precision, band=band, progress=progress)
        return finish(parts, rmse_threshold=rmse_threshold, min_fit_points=min_fit_points,
                      beta_dtau=beta_dtau, n_bins=n_bins, transverse=transverse,
                      msl_range=msl_range, smooth=smooth, moving_var_window=moving_var_window)
    done: list[WindowResult] = []
    holder: dict = {}

    def on_window(k: int, ws: WindowSums) -> bool:
        if "parts" not in holder:
            return False
        done.append(finish_window(ws, holder["parts"], opts, holder["mv"]))
        return True

    # Loss and layout are needed by the callback before the pass ends: read them first
    # through a zero-work pass description.
    holder["parts"], holder["mv"] = _preamble(path, T, tw_step, pair_stride, by_layer, loss, msl,
                                              t_start, t_stop, allow_incomplete, opts)
    parts = accumulate_columns(path, T, tw_step, pair_stride=pair_stride, by_layer=by_layer,
                               loss=loss, msl=msl, t_start=t_start, t_stop=t_stop,
                               allow_incomplete=allow_incomplete, memory_mb=memory_mb,
                               progress=progress, gram_precision=gram_precision, band=band,
                               on_window=on_window)
    mv = holder["mv"]
    for ws in parts.windows:
        if ws is not None:
            done.append(finish_window(ws, parts, opts, mv))
    return _assemble(parts, done, opts, mv)


def _accumulate_on_cluster(client, n_shards, path, T, tw_step, *, progress, **kwargs):
    """Partial sums of dimension shards computed by Dask workers, merged in shard order."""
    from .cluster import default_n_shards, get_client, map_shards  # noqa: PLC0415
    from .io import Trajectory, column_shards  # noqa: PLC0415

    client = get_client(client)
    with Trajectory(path, allow_incomplete=kwargs.get("allow_incomplete", False)) as traj:
        shards = column_shards(traj.n_dims, n_shards or default_n_shards(client),
                               align=traj.chunk_cols)
    return map_shards(client, accumulate_columns, shards, str(path), T, tw_step,
                      progress=progress, desc="analyze", reduce=_merge_partials, **kwargs)


def _merge_partials(parts: list[AnalysisPartials]) -> AnalysisPartials:
    total = parts[0]
    for p in parts[1:]:
        total = total.merge(p)
    return total


def _preamble(path, T, tw_step, pair_stride, by_layer, loss, msl, t_start, t_stop,
              allow_incomplete, opts):
    """Partials without sums (loss, layer names, flags) so windows can be finished mid-pass."""
    from .io import Trajectory  # noqa: PLC0415

    with Trajectory(path, allow_incomplete=allow_incomplete) as traj:
        loss_arr = _read_loss(traj, loss) if (msl or loss in traj.file) else None
        lmap = _layer_map(traj) if by_layer else None
        names = lmap.names if lmap else None
        dims = None
        if lmap:
            dims = np.zeros(len(names), dtype=np.int64)
            for a, b, lid in lmap.runs:
                dims[lid] += b - a
        parts = AnalysisPartials(
            source=str(traj.path), n_steps=traj.n_steps, n_dims_total=traj.n_dims,
            columns=[(0, traj.n_dims)], windows=[], pair_stride=int(pair_stride), pairs=True,
            layer_names=names, loss=loss_arr, loss_name=loss if loss_arr is not None else None,
            msl=msl, coordinate_subset=False, complete=traj.complete, layer_dims=dims)
    mv = None if loss_arr is None else moving_variance(loss_arr, opts.moving_var_window)
    return parts, mv
