"""The run-file recorder: every SGD step to HDF5 from a background thread.

File format: docs/DEVELOPING.md, "Run file". The training loop hands the
recorder fresh CPU float32 copies of the weights (never views of the live
parameters) through a bounded queue; a writer thread gathers them into a
block of `chunk_rows` rows (one HDF5 chunk row) and writes whole blocks.

Crash safety. Data reaches the file in *commits*: the pending rows, epoch
statistics and checkpoints are written, the training state needed to resume
(model, optimiser, RNG and loop counters, `torch.save` bytes) goes into the
inactive one of two slots under `/resume`, the file is flushed, and only then
are `n_steps_written`, `n_epochs_written` and the active slot updated and the
file flushed again. A process killed between commits leaves the metadata of
the last commit on disk (rows written since then lie beyond
`n_steps_written` and are ignored); `--resume` truncates to the state of the
active slot and continues from there. The loop commits every `flush_every`
steps and at the end of each epoch.
"""
from __future__ import annotations

import io
import os
import queue
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError

#: datasets with one row per recorded step
_STEP_SETS = ("weights", "loss", "eval_loss", "grads")
_EPOCH_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "step")


class RecordingError(InputError):
    """Writing the run file failed (full disk, quota, I/O error)."""


class GuardedFile(io.RawIOBase):
    """The run file as HDF5 sees it (h5py's file-object driver), with a fuse.

    The first failed write (full disk, quota) blows the fuse: it and every
    later write or truncate is dropped and reported as done, so that HDF5
    never runs into an error path (some of its writes happen while objects
    are released, where errors would be swallowed) and neither its clean-up
    nor interpreter shutdown can touch what the last commit left on disk.
    The recorder checks `failed` after every operation. `fail()` blows the
    fuse by hand (tests).
    """

    def __init__(self, path: Path, mode: str):
        super().__init__()
        self.raw = open(path, mode, buffering=0)  # noqa: SIM115 - unbuffered: a write is in the OS at once
        self.failed: BaseException | None = None

    def readable(self):
        return True

    def writable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, b):
        return self.raw.readinto(b)

    def read(self, n=-1):
        return self.raw.read(n)

    def seek(self, pos, whence=0):
        return self.raw.seek(pos, whence)

    def tell(self):
        return self.raw.tell()

    def write(self, b):
        if self.failed is not None:
            return len(memoryview(b))
        mv = memoryview(b).cast("B")
        try:
            done = 0
            while done < len(mv):
                n = self.raw.write(mv[done:])
                if not n:
                    raise OSError(28, os.strerror(28))
                done += n
            return done
        except OSError as exc:
            self.failed = exc
            return len(mv)

    def truncate(self, size=None):
        if self.failed is None:
            return self.raw.truncate(size)
        return self.raw.tell() if size is None else size

    def flush(self):
        pass   # unbuffered

    def fail(self, exc: BaseException | None = None) -> None:
        self.failed = exc or OSError("writes disabled")

    def close(self):
        if not self.raw.closed:
            self.raw.close()
        super().close()


def _open_h5_guarded(path: Path, mode: str):
    import h5py  # noqa: PLC0415

    fobj = GuardedFile(path, "w+b" if mode == "w" else "r+b")
    try:
        f = h5py.File(fobj, mode)
    except Exception:
        fobj.close()
        raise
    f._anodiff_fobj = fobj
    return f


def chunk_rows_for(n_dims: int, max_rows: int = 256, budget_bytes: int = 64 * 2**20) -> int:
    """Rows per /weights chunk: min(256, the rows of one d-wide block within `budget_bytes`), ≥ 8."""
    rows = max_rows
    while rows > 8 and rows * n_dims * 4 > budget_bytes:
        rows //= 2
    return rows


def _compression_kwargs(compression: str | None) -> dict:
    if not compression or compression == "none":
        return {}
    name, _, level = compression.partition(":")
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": int(level or 4), "shuffle": True}
    if name == "lzf" and not level:
        return {"compression": "lzf", "shuffle": True}
    raise InputError(f"unknown compression {compression!r}; use none, lzf or gzip[:LEVEL]")


def create_run_file(path: Path, attrs: dict, layout: dict, state_layout: dict, *, n_dims: int,
                    weights_index, grads_index, grads_kind: str | None, eval_loss: bool,
                    compression: str | None, chunk_rows: int):
    """Create an empty run file (overwriting `path`) and return the open h5py.File."""
    import h5py  # noqa: PLC0415

    comp = _compression_kwargs(compression)
    try:
        f = _open_h5_guarded(path, "w")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot create ({exc})") from None
    try:
        f.attrs.update(attrs)
        f.attrs["complete"] = False
        f.attrs["n_steps_written"] = 0
        f.attrs["n_epochs_written"] = 0
        cols = min(n_dims, 4096)
        f.create_dataset("weights", (0, n_dims), "f4", maxshape=(None, n_dims),
                         chunks=(chunk_rows, cols), **comp)
        f.create_dataset("loss", (0,), "f4", maxshape=(None,), chunks=(4096,))
        if eval_loss:
            f.create_dataset("eval_loss", (0,), "f4", maxshape=(None,), chunks=(4096,))
        if weights_index is not None:
            f.create_dataset("weights_index", data=np.asarray(weights_index, np.int64))
            f.attrs["subset"] = True
        if grads_kind:
            k = len(grads_index)
            f.create_dataset("grads", (0, k), "f4", maxshape=(None, k),
                             chunks=(chunk_rows, min(k, 4096)), **comp)
            f.create_dataset("grads_index", data=np.asarray(grads_index, np.int64))
            f.attrs["grads"] = grads_kind
        g = f.create_group("epoch")
        for key in _EPOCH_KEYS:
            g.create_dataset(key, (0,), "i8" if key == "step" else "f8", maxshape=(None,), chunks=(256,))
        f.create_group("checkpoints")
        lay = f.create_group("layout")
        s = h5py.string_dtype()
        for prefix, table in (("", layout), ("state_", state_layout)):
            for key, values in table.items():
                dt = s if key in ("names", "shapes", "dtypes") else np.int64
                lay.create_dataset(prefix + key, data=np.asarray(values, dtype=object if dt is s else dt),
                                   dtype=dt)
        r = f.create_group("resume")
        for slot in (0, 1):
            r.create_dataset(f"state_{slot}", (0,), "u1", maxshape=(None,), chunks=(1 << 16,))
        r.attrs["slot"] = -1
        f.flush()
    except Exception:
        f.close()
        raise
    return f


def open_for_resume(path: Path):
    """Open a killed run for appending -> (h5py.File, training-state dict), truncated to the state."""
    import h5py  # noqa: PLC0415
    import torch  # noqa: PLC0415

    if not path.is_file():
        raise InputError(f"--resume: {path} does not exist")
    try:
        f = _open_h5_guarded(path, "r+")
    except OSError as exc:
        raise InputError(f"{path}: cannot open for resuming ({str(exc).split('(')[0].strip()}); "
                         "start again with --overwrite") from None
    try:
        if f.attrs.get("complete", False):
            raise InputError(f"{path}: run is already complete; nothing to resume")
        slot = int(f["resume"].attrs.get("slot", -1)) if "resume" in f else -1
        if slot not in (0, 1):
            raise InputError(f"{path}: no resumable state was recorded; start again with --overwrite")
        blob = f["resume"][f"state_{slot}"][()].tobytes()
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        rows, epochs = int(state["rows"]), int(state["epochs_done"])
        for name in _STEP_SETS:
            if name in f and f[name].shape[0] > rows:
                f[name].resize(rows, axis=0)
        for key in _EPOCH_KEYS:
            if f["epoch"][key].shape[0] > epochs:
                f["epoch"][key].resize(epochs, axis=0)
        for name in list(f["checkpoints"]):
            if int(name.split("_")[-1]) > epochs:
                del f["checkpoints"][name]
        f.attrs["n_steps_written"] = rows
        f.attrs["n_epochs_written"] = epochs
        f.flush()
    except InputError:
        f.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file
        f.close()
        raise InputError(f"{path}: cannot resume ({type(exc).__name__}: {exc}); start again "
                         "with --overwrite") from None
    return f, state


class Recorder:
    """Background writer of one run file (opened by `create_run_file` / `open_for_resume`).

    Main-thread API: `step`, `epoch`, `commit`, `finish`, `abort`. Every call
    raises `RecordingError` once the writer has failed; what was committed
    before stays readable with an honest `n_steps_written`.
    """

    def __init__(self, f, *, path: Path, max_queue: int | None = None):
        self.f = f
        self.path = Path(path)
        w = f["weights"]
        self.chunk_rows = int(w.chunks[0])
        self.n_dims = int(w.shape[1])
        self.rows = int(f.attrs["n_steps_written"])   # rows in the file
        self.has_eval = "eval_loss" in f
        self.has_grads = "grads" in f
        self.block0 = self.rows - self.rows % self.chunk_rows   # row index of buf[0]
        self.buf = np.empty((self.chunk_rows, self.n_dims), np.float32)
        self.gbuf = np.empty((self.chunk_rows, f["grads"].shape[1]), np.float32) if self.has_grads else None
        self.nbuf = self.rows - self.block0     # rows of buf filled (the first ones are in the file)
        self.scalars: list[tuple[float, float]] = []   # (loss, eval_loss) not yet in the file
        self.error: BaseException | None = None
        self.committed_rows = self.rows
        row_bytes = max(1, self.n_dims * 4)
        if max_queue is None:
            max_queue = int(min(256, max(4, (256 * 2**20) // row_bytes)))
        self.q: queue.Queue = queue.Queue(maxsize=max_queue)
        self.thread = threading.Thread(target=self._run, name="anodiff-recorder", daemon=True)
        self.thread.start()

    # -- main thread ------------------------------------------------------
    def _put(self, item) -> None:
        while True:
            self._check()
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _check(self) -> None:
        if self.error is not None:
            raise RecordingError(self._error_line()) from None

    def _error_line(self) -> str:
        exc = getattr(getattr(self.f, "_anodiff_fobj", None), "failed", None) or self.error
        if isinstance(exc, OSError) and exc.errno:
            reason = os.strerror(exc.errno)
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"{self.path}: writing failed ({reason}); "
                f"{self.committed_rows} steps were recorded and remain readable (resume with --resume)")

    def step(self, weights: np.ndarray, loss: float, eval_loss: float | None = None,
             grads: np.ndarray | None = None) -> None:
        """Queue one row: `weights` must be a fresh array the caller will not modify."""
        self._put(("step", weights, float(loss), float("nan") if eval_loss is None else float(eval_loss),
                   grads))

    def epoch(self, number: int, stats: dict, checkpoint: np.ndarray | None) -> None:
        """Queue the statistics of epoch `number` (1-based; 0 = initial state) and its checkpoint."""
        self._put(("epoch", int(number), dict(stats), checkpoint))

    def commit(self, state: dict) -> None:
        """Queue a commit point with the training state (tensors already copied)."""
        self._put(("commit", state))

    def finish(self) -> None:
        """Queue the end of the run (complete=True), wait for the writer and close the file."""
        self._put(("finish",))
        self._put(None)
        self.thread.join()
        self._close()
        self._check()

    def abort(self) -> None:
        """Stop without marking the run complete (the last commit stays the resume point)."""
        if self.thread.is_alive():
            try:
                self.q.put(None, timeout=60)
            except queue.Full:
                pass
            self.thread.join(timeout=600)
        self._close()

    def _close(self) -> None:
        try:
            if self.f.id.valid:
                self.f.close()
        except Exception:  # noqa: BLE001 - nothing more can be done for a broken file
            pass

    # -- writer thread ----------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue   # drain so that the main thread never blocks on a full queue
            try:
                getattr(self, "_do_" + item[0])(*item[1:])
                self._fuse()
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                fobj = getattr(self.f, "_anodiff_fobj", None)
                if fobj is not None:
                    fobj.fail(exc)   # keep the last commit on disk as it is
                self.error = exc

    def _do_step(self, weights, loss, eval_loss, grads) -> None:
        self.buf[self.nbuf] = weights
        if self.gbuf is not None:
            self.gbuf[self.nbuf] = grads
        self.nbuf += 1
        self.scalars.append((loss, eval_loss))
        if self.nbuf == self.chunk_rows:
            self._write_rows()
            self.block0 += self.chunk_rows
            self.nbuf = 0

    def _write_rows(self) -> None:
        """Write the buffered rows [self.rows, block0 + nbuf) to the file."""
        start = self.rows - self.block0
        stop = self.nbuf
        if stop <= start:
            return
        end = self.block0 + stop
        f = self.f
        f["weights"].resize(end, axis=0)
        f["weights"][self.rows:end] = self.buf[start:stop]
        if self.gbuf is not None:
            f["grads"].resize(end, axis=0)
            f["grads"][self.rows:end] = self.gbuf[start:stop]
        sc = np.asarray(self.scalars, np.float32).reshape(-1, 2)
        f["loss"].resize(end, axis=0)
        f["loss"][self.rows:end] = sc[:, 0]
        if self.has_eval:
            f["eval_loss"].resize(end, axis=0)
            f["eval_loss"][self.rows:end] = sc[:, 1]
        self.scalars = []
        self.rows = end

    def _do_epoch(self, number, stats, checkpoint) -> None:
        f = self.f
        if number >= 1:
            g = f["epoch"]
            n = g["step"].shape[0]
            for key in _EPOCH_KEYS:
                g[key].resize(n + 1, axis=0)
                g[key][n] = stats[key]
        if checkpoint is not None:
            name = f"epoch_{number}"
            if name in f["checkpoints"]:
                del f["checkpoints"][name]
            f["checkpoints"].create_dataset(name, data=np.asarray(checkpoint, np.float32))

    def _do_commit(self, state) -> None:
        import torch  # noqa: PLC0415

        self._write_rows()
        f = self.f
        bio = io.BytesIO()
        torch.save(state, bio)
        blob = np.frombuffer(bio.getbuffer(), dtype=np.uint8)
        r = f["resume"]
        slot = 1 - int(r.attrs["slot"]) if int(r.attrs["slot"]) in (0, 1) else 0
        ds = r[f"state_{slot}"]
        ds.resize(blob.size, axis=0)
        ds[:] = blob
        f.flush()                      # data first …
        self._fuse()
        f.attrs["n_steps_written"] = self.rows
        f.attrs["n_epochs_written"] = int(f["epoch"]["step"].shape[0])
        r.attrs["slot"] = slot
        f.flush()                      # … then the counters that make it visible
        self.committed_rows = self.rows

    def _fuse(self) -> None:
        fobj = getattr(self.f, "_anodiff_fobj", None)
        if fobj is not None and fobj.failed is not None:
            raise fobj.failed

    def _do_finish(self) -> None:
        self._write_rows()
        self.f.flush()
        self._fuse()
        f = self.f
        f.attrs["n_steps_written"] = self.rows
        f.attrs["n_epochs_written"] = int(f["epoch"]["step"].shape[0])
        f.attrs["complete"] = True
        f.flush()
        if "resume" in f:              # a finished run needs no resume state
            del f["resume"]
            f.flush()
        self.committed_rows = self.rows
