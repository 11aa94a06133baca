"""Reading run files (DESIGN.md, "Trajectory file").

`Trajectory` opens `run.h5`, checks that its datasets and attributes add up,
and streams the weights of a set of windows in column strips that follow the
HDF5 chunking, reading the next strip ahead (OS readahead or a prefetch
thread) so that it overlaps with computing on the current one. All numeric
work lives elsewhere.
"""
from __future__ import annotations

import concurrent.futures as futures
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ._progress import progress_bar
from .errors import InputError


def _open_h5(path: Path, mode: str = "r"):
    import h5py  # noqa: PLC0415

    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an HDF5 run file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        reason = str(exc).split("(")[0].strip() or "unreadable"
        raise InputError(f"{path}: not a readable HDF5 file ({reason})") from None


@dataclass
class Strip:
    """Rows [row0, row0 + data.shape[0]) and columns [c0, c1) of /weights."""

    c0: int
    c1: int
    row0: int
    data: np.ndarray
    window_indices: list[int]

    def block(self, t_start: int, t_stop: int) -> np.ndarray:
        """The (t_stop - t_start, c1 - c0) rows of one window (a C-contiguous view)."""
        return self.data[t_start - self.row0: t_stop - self.row0]


class Trajectory:
    """A run file's weight trajectory, `/weights` (n_steps, d), read lazily.

    Parameters
    ----------
    path : str or Path
    allow_incomplete : bool
        A run whose `complete` attribute is False (killed or still running) is
        refused unless this is set; then only its recorded steps are used.
    """

    def __init__(self, path, allow_incomplete: bool = False):
        self.path = Path(path)
        self._fd: int | None = None  # raw descriptor for readahead, opened on first use
        self.file = _open_h5(self.path)
        try:
            self._validate(allow_incomplete)
        except Exception:
            self.file.close()
            raise

    def _validate(self, allow_incomplete: bool) -> None:
        f = self.file
        if "weights" not in f:
            raise InputError(f"{self.path}: no dataset /weights (not an anodiff run file?)")
        w = f["weights"]
        if not hasattr(w, "shape") or len(w.shape) != 2:
            raise InputError(f"{self.path}: /weights must be 2-D (n_steps, n_dims), got shape "
                             f"{getattr(w, 'shape', None)}")
        if w.dtype.kind != "f":
            raise InputError(f"{self.path}: /weights must hold floating-point values, got {w.dtype}")
        self.weights = w
        n_rows, self.n_dims = (int(v) for v in w.shape)
        attrs = dict(f.attrs)
        n_written = attrs.get("n_steps_written", n_rows)
        try:
            n_written = int(n_written)
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: attribute n_steps_written is not an integer") from None
        if not 0 <= n_written <= n_rows:
            raise InputError(f"{self.path}: attribute n_steps_written={n_written} does not fit "
                             f"/weights with {n_rows} rows (truncated file?)")
        self.complete = bool(attrs.get("complete", True))
        if not self.complete and not allow_incomplete:
            raise InputError(f"{self.path}: run is incomplete (complete=False, {n_written} steps "
                             "recorded); pass --allow-incomplete to analyse the recorded steps")
        self.n_steps = n_written
        self.attrs = attrs
        if "loss" in f and f["loss"].shape[0] < self.n_steps:
            raise InputError(f"{self.path}: /loss has {f['loss'].shape[0]} rows but /weights has "
                             f"{self.n_steps} steps")
        self.chunk_cols = int(w.chunks[1]) if w.chunks else min(self.n_dims, 4096)

    # -- reading ahead ---------------------------------------------------
    @property
    def can_readahead(self) -> bool:
        """Whether `readahead` can ask the OS for /weights chunks (POSIX, chunked dataset)."""
        return hasattr(os, "posix_fadvise") and self.weights.chunks is not None and \
            hasattr(self.weights.id, "get_chunk_info_by_coord")

    def readahead(self, t_start: int, t_stop: int, c0: int = 0, c1: int | None = None) -> None:
        """Ask the OS to start reading the chunks of this block into the page cache.

        Non-blocking (posix_fadvise WILLNEED on each chunk's bytes); nothing
        happens where that is not possible, and any failure is ignored: it only
        ever changes how soon a later `read` finds its data.
        """
        if not self.can_readahead:
            return
        c1 = self.n_dims if c1 is None else c1
        cr, cc = self.weights.chunks
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            ranges = []
            for r in range(t_start - t_start % cr, t_stop, cr):
                for c in range(c0 - c0 % cc, c1, cc):
                    info = self.weights.id.get_chunk_info_by_coord((r, c))
                    if info.byte_offset is not None and info.size:
                        ranges.append((int(info.byte_offset), int(info.size)))
            ranges.sort()
            start = end = -1
            for off, size in ranges + [(-1, 0)]:
                if off != end:  # not contiguous with the run so far
                    if end > start >= 0:
                        os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_WILLNEED)
                    start = off
                end = off + size
        except (OSError, ValueError, RuntimeError, KeyError):
            pass

    # -- context manager -------------------------------------------------
    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.file.close()

    def __enter__(self) -> "Trajectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Trajectory({str(self.path)!r}, n_steps={self.n_steps}, n_dims={self.n_dims})"

    # -- windows ---------------------------------------------------------
    def window_starts(self, T: int, tw_step: int, t_start: int = 0,
                      t_stop: int | None = None) -> list[int]:
        """Starts t_w of the windows [t_w, t_w+T) that fit in [t_start, t_stop)."""
        T, tw_step, t_start = int(T), int(tw_step), int(t_start)
        t_stop = self.n_steps if t_stop is None else int(t_stop)
        if tw_step <= 0:
            raise InputError(f"tw_step must be positive, got {tw_step}")
        if T < 2:
            raise InputError(f"window length T must be at least 2, got {T}")
        if not 0 <= t_start < self.n_steps:
            raise InputError(f"t_start={t_start} outside the trajectory's {self.n_steps} steps")
        t_stop = min(t_stop, self.n_steps)
        if t_start + T > t_stop:
            raise InputError(f"{self.path}: window length T={T} is larger than the {t_stop - t_start} "
                             f"recorded steps in [{t_start}, {t_stop})")
        return list(range(t_start, t_stop - T + 1, tw_step))

    def read(self, t_start: int, t_stop: int, c0: int = 0, c1: int | None = None) -> np.ndarray:
        """Rows [t_start, t_stop), columns [c0, c1) of /weights as a C-contiguous array."""
        c1 = self.n_dims if c1 is None else c1
        out = np.empty((t_stop - t_start, c1 - c0), dtype=self.weights.dtype)
        self.weights.read_direct(out, np.s_[t_start:t_stop, c0:c1])
        return out

    def iter_strips(self, windows: list[tuple[int, int]], memory_mb: float = 256.0,
                    progress: bool = False, desc: str = "read",
                    columns: tuple[int, int] | None = None,
                    min_width: int = 0, prefetch: bool | str = True) -> Iterator[Strip]:
        """Yield column strips covering every window, reading each stored value about once.

        Windows (sorted by start) are grouped into row spans; for each span the
        columns (all, or the shard `columns` = [c0, c1)) are read in strips
        whose width is a multiple of the HDF5 chunk width, sized so that two
        strips (current + prefetched) fit in `memory_mb`. A group's span is
        kept short enough for strips of at least `min_width` columns (when one
        window alone allows it): wide strips make faster matrix products, at
        the price of reading rows shared by windows of different groups again.

        `prefetch`: True reads the next strip in a background thread while the
        caller works on the current one; False reads in turn; 'auto' reads in
        turn but first asks the OS to read the next strip's chunks ahead
        (`readahead`), so that a disk works while the caller computes and a
        file in the page cache costs no second thread (a memory copy in a
        thread slows the caller's threaded BLAS by more than it saves); where
        the OS cannot be asked, 'auto' is True.
        """
        if not windows:
            return
        col_start, col_stop = (0, self.n_dims) if columns is None else (int(columns[0]), int(columns[1]))
        if not 0 <= col_start < col_stop <= self.n_dims:
            raise InputError(f"column range [{col_start}, {col_stop}) outside the {self.n_dims} dimensions")
        itemsize = self.weights.dtype.itemsize
        budget = max(1, int(memory_mb * 2**20 / 2))  # two strips in flight
        min_chunks = max(1, -(-min(int(min_width), col_stop - col_start) // self.chunk_cols))
        groups = _group_windows(windows, budget, itemsize * self.chunk_cols * min_chunks)
        plan = []
        for idx in groups:
            r0 = min(windows[k][0] for k in idx)
            r1 = max(windows[k][1] for k in idx)
            width = max(1, budget // ((r1 - r0) * itemsize * self.chunk_cols)) * self.chunk_cols
            width = min(width, col_stop - col_start)
            for c0 in range(col_start, col_stop, width):
                plan.append((r0, r1, c0, min(c0 + width, col_stop), idx))
        total_bytes = sum((r1 - r0) * (c1 - c0) * itemsize for r0, r1, c0, c1, _ in plan)
        bar = progress_bar(total_bytes, desc=desc, unit="B", enabled=progress, unit_scale=True,
                           unit_divisor=1024)
        if prefetch not in (True, False, "auto"):
            raise InputError(f"prefetch must be True, False or 'auto', got {prefetch!r}")
        pool = None
        pending = None
        readahead = prefetch == "auto" and self.can_readahead
        overlap = prefetch is True or (prefetch == "auto" and not readahead)
        try:
            for i, item in enumerate(plan):
                if pending is not None:
                    data = pending.result()
                else:
                    data = self.read(*_read_args(item))
                pending = None
                if readahead and i + 1 < len(plan):
                    self.readahead(*_read_args(plan[i + 1]))
                elif overlap and i + 1 < len(plan):
                    if pool is None:
                        pool = futures.ThreadPoolExecutor(max_workers=1,
                                                          thread_name_prefix="anodiff-prefetch")
                    pending = pool.submit(self.read, *_read_args(plan[i + 1]))
                r0, r1, c0, c1, idx = item
                yield Strip(c0=c0, c1=c1, row0=r0, data=data, window_indices=idx)
                bar.update(data.nbytes)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            bar.close()


def column_shards(n_dims: int, n_shards: int, align: int = 1) -> list[tuple[int, int]]:
    """Split [0, n_dims) into at most n_shards contiguous ranges whose edges are multiples of `align`."""
    n_blocks = -(-n_dims // align)
    n_shards = max(1, min(n_shards, n_blocks))
    edges = [min(n_dims, (n_blocks * k // n_shards) * align) for k in range(n_shards + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _read_args(item):
    r0, r1, c0, c1, _ = item
    return r0, r1, c0, c1


def _group_windows(windows, budget_bytes: int, bytes_per_row_chunk: int) -> list[list[int]]:
    """Consecutive windows whose joint row span still fits one chunk-wide strip in the budget."""
    order = sorted(range(len(windows)), key=lambda k: windows[k])
    groups: list[list[int]] = []
    current: list[int] = []
    r0 = r1 = 0
    for k in order:
        s, e = windows[k]
        if current and (max(r1, e) - r0) * bytes_per_row_chunk > budget_bytes:
            groups.append(current)
            current = []
        if not current:
            r0, r1 = s, e
        current.append(k)
        r1 = max(r1, e)
    if current:
        groups.append(current)
    return groups




# -- checkpoints of run files (written by anodiff.train) ---------------------
def _run_file(path):
    return _open_h5(Path(path))


def list_checkpoints(path) -> list[int]:
    """Epochs N with a checkpoint `/checkpoints/epoch_N` in the run file, sorted (0 = initial state)."""
    with _run_file(path) as f:
        if "checkpoints" not in f:
            return []
        epochs = []
        for name in f["checkpoints"]:
            head, _, num = name.rpartition("_")
            if head == "epoch" and num.isdigit():
                epochs.append(int(num))
        return sorted(epochs)


def read_checkpoint(path, epoch: int) -> dict:
    """The model's state_dict after epoch `epoch` (0 = initial weights) as {name: torch.Tensor}.

    The checkpoint `/checkpoints/epoch_N` is the flat float32 state
    (parameters, then buffers) described by `/layout/state_*`; integer buffers
    (batch-norm's num_batches_tracked) are cast back to their dtype.
    """
    import torch  # noqa: PLC0415

    p = Path(path)
    with _run_file(p) as f:
        epochs = []
        if "checkpoints" in f:
            epochs = sorted(int(n.rpartition("_")[2]) for n in f["checkpoints"]
                            if n.startswith("epoch_") and n.rpartition("_")[2].isdigit())
        if not epochs:
            raise InputError(f"{p}: run has no checkpoints")
        if int(epoch) not in epochs:
            raise InputError(f"{p}: epoch {int(epoch)} was not recorded; recorded: "
                             f"{', '.join(str(e) for e in epochs)}")
        lay = f.get("layout")
        need = ("state_names", "state_shapes", "state_offsets", "state_sizes", "state_dtypes")
        if lay is None or any(k not in lay for k in need):
            raise InputError(f"{p}: no /layout/state_* tables, cannot map the checkpoint to a state_dict")
        flat = f["checkpoints"][f"epoch_{int(epoch)}"][()]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in lay["state_names"][()]]
        shapes = [s.decode() if isinstance(s, bytes) else str(s) for s in lay["state_shapes"][()]]
        dtypes = [s.decode() if isinstance(s, bytes) else str(s) for s in lay["state_dtypes"][()]]
        offsets = lay["state_offsets"][()]
        sizes = lay["state_sizes"][()]
    if len(flat) != int(sum(sizes)):
        raise InputError(f"{p}: checkpoint epoch_{int(epoch)} holds {len(flat)} values but the layout "
                         f"describes {int(sum(sizes))}")
    state = {}
    for name, shape, dt, off, size in zip(names, shapes, dtypes, offsets, sizes):
        dims = tuple(int(s) for s in shape.split(",")) if shape else ()
        t = torch.from_numpy(np.array(flat[int(off):int(off) + int(size)])).reshape(dims)
        state[name] = t.to(getattr(torch, dt, torch.float32))
    return state


def model_from_run(path, epoch: int):
    """(model, info): the run's network with the weights of checkpoint `epoch`, in eval mode.

    info holds the run's attributes (model, dataset, in_channels, num_classes,
    loss, lr, batch_size, …) plus `epoch`.
    """
    from .train.models import build_model  # noqa: PLC0415

    p = Path(path)
    with _run_file(p) as f:
        attrs = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v) for k, v in f.attrs.items()}
    for key in ("model", "in_channels", "num_classes"):
        if key not in attrs:
            raise InputError(f"{p}: attribute {key!r} missing, cannot rebuild the model")
    state = read_checkpoint(p, epoch)
    model = build_model(str(attrs["model"]), int(attrs["in_channels"]), int(attrs["num_classes"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{p}: checkpoint epoch_{int(epoch)} does not fit model "
                         f"{attrs['model']} ({str(exc).splitlines()[0]})") from None
    model.eval()
    info = dict(attrs)
    info["epoch"] = int(epoch)
    return model, info
