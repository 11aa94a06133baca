"""GPU backend: the window engine on a CUDA device (`anodiff._cuda`).

The compiled module is optional and loaded lazily: ``import anodiff`` never
touches it, and :func:`cuda_available` / :func:`cuda_unavailable_reason` say
whether it can be used here and, if not, why (module not built, cuFFT/cuBLAS
libraries missing, no driver, no device).

Inputs already on the device are used in place, without copies: anything with
``__cuda_array_interface__`` (CuPy arrays, numba arrays, torch CUDA tensors) or
``__dlpack__`` (converted through CuPy or torch, still without a copy). Host
arrays are copied up. Results come back as NumPy float64 arrays.

Numerics (same contract as the CPU engine, DESIGN.md):

* every window is centred on its first row, x_i(t) = w_i(t) - w_i(0), computed
  in float64 from the float32/float64 input;
* MSD sums: acf[τ] = Σ_i Σ_{t<T-τ} x_i(t) x_i(t+τ) from batched cuFFT D2Z
  transforms (float64, length N = smallest power of two ≥ 2T-1): the power
  spectra Σ_i |X_i(k)|² are summed over all dimensions and transformed back
  once. float32 cuFFT is NOT used: its rounding (~1e-7 · log2 N of Σx²) is
  amplified ~T/2-fold by the cancellation in Σ(x(t+τ)-x(t))² = S(τ) - 2 acf(τ)
  at small lags, far beyond the 1e-6 contract;
* Gram matrix G[s,t] = Σ_i x_i(s) x_i(t) with cuBLAS SYRK per dimension chunk,
  chunks summed in float64. ``gram_precision="float64"`` (default) multiplies
  the centred values in float64 (DSYRK: exact products, float64 sums; on
  A100/H100-class cards FP64 runs at the FP32 rate); ``"float32"`` uses SSYRK
  (float32 products and float32 sums within a chunk, pedantic math: no TF32),
  ~10× faster on consumer cards but with relative errors ~1e-7·√chunk on G and
  more after the cancellation in Δr² of nearby steps;
* step norms steps2[t] = Σ_i (x_i(t+1) - x_i(t))² in float64 (contour length);
* binned pair curves and the Lévy histogram: own kernels around the per-pair
  arithmetic of ``cpp/pair_math.hpp``, which the CPU shares (``_core.pair_*``).
"""
from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass

import numpy as np

from .errors import InputError

_state: tuple[object, str | None] | None = None  # (module or None, reason or None)


# -- availability --------------------------------------------------------------
def _nvidia_lib_dirs() -> list[str]:
    try:
        import nvidia  # noqa: PLC0415  (NVIDIA's wheels: nvidia-cufft, nvidia-cublas)
    except ImportError:
        return []
    dirs = []
    for root in list(getattr(nvidia, "__path__", [])):
        for sub in ("cu13", "cu12", "cufft", "cublas", "cuda_runtime"):
            d = os.path.join(root, sub, "lib")
            if os.path.isdir(d):
                dirs.append(d)
    return dirs


def _preload_libraries() -> None:
    """Load cuBLAS/cuFFT from NVIDIA's wheels (if installed) so _cuda finds them by soname."""
    for d in _nvidia_lib_dirs():
        for pattern in ("libcublasLt.so.*", "libcublas.so.*", "libcufft.so.*"):
            for path in sorted(glob.glob(os.path.join(d, pattern))):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    pass


def _load():
    global _state
    if _state is not None:
        return _state
    module, reason = None, None
    try:
        from . import _cuda as module  # noqa: PLC0415
    except ImportError as first:
        _preload_libraries()
        try:
            from . import _cuda as module  # noqa: PLC0415
        except ImportError as exc:
            module = None
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, ModuleNotFoundError) or "cannot import name" in msg:
                reason = ("anodiff was built without its CUDA module anodiff._cuda (no nvcc or no "
                          "cuFFT/cuBLAS at build time; see pip install . -Ccmake.define.ANODIFF_CUDA=ON)")
            else:
                reason = f"anodiff._cuda cannot be loaded: {msg}"
            del first
    if module is not None:
        n = module.device_count()
        if n == 0:
            reason = f"no usable CUDA device ({module.runtime_error_reason() or 'none found'})"
    _state = (module, reason)
    return _state


def cuda_available() -> bool:
    """True when anodiff._cuda is built, loads (cuFFT/cuBLAS found) and sees a CUDA device.

    When False, :func:`cuda_unavailable_reason` says why.
    """
    module, reason = _load()
    return module is not None and reason is None


def cuda_unavailable_reason() -> str | None:
    """Why the GPU backend cannot be used here (one line), or None when it can."""
    return _load()[1]


def _require():
    module, reason = _load()
    if reason is not None:
        raise InputError(f"the CUDA backend is not available: {reason}")
    return module


def device_info(device: int = 0) -> dict:
    """Name, compute capability, memory (bytes), FP32:FP64 throughput ratio of a device."""
    return _require().device_info(int(device))


# -- device arrays -------------------------------------------------------------
@dataclass
class DeviceArray:
    """A borrowed view of a device array: pointer, shape, strides in elements, dtype."""

    ptr: int
    shape: tuple
    strides: tuple  # elements
    dtype: np.dtype
    stream: int | None
    owner: object  # keeps the producer's memory alive

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize


def _is_torch(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "torch"


def _is_device_array(obj) -> bool:
    """Whether obj lives in CUDA memory (CUDA array interface, torch CUDA tensor, DLPack CUDA)."""
    if _is_torch(obj):
        return bool(getattr(obj, "is_cuda", False))
    try:
        if hasattr(obj, "__cuda_array_interface__"):
            return True
    except Exception:  # noqa: BLE001  (a property that refuses, e.g. on a host array)
        return False
    dev = getattr(obj, "__dlpack_device__", None)
    if dev is not None and not isinstance(obj, np.ndarray):
        try:
            return int(dev()[0]) in (2, 13)  # kDLCUDA, kDLCUDAManaged
        except Exception:  # noqa: BLE001
            return False
    return False


def as_device_array(obj) -> DeviceArray:
    """View of a CuPy array / torch CUDA tensor / DLPack CUDA array without copying."""
    if _is_torch(obj):
        obj = obj.detach()  # a tensor that requires grad refuses the array interface
    elif not hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "__dlpack__"):
        obj = _from_dlpack(obj)
    try:
        cai = obj.__cuda_array_interface__
    except (AttributeError, RuntimeError) as exc:
        raise InputError(f"not a CUDA array: {exc}") from None
    dtype = np.dtype(cai["typestr"])
    shape = tuple(int(s) for s in cai["shape"])
    if cai.get("strides") is None:
        strides, acc = [], 1
        for s in reversed(shape):
            strides.append(acc)
            acc *= s
        strides = tuple(reversed(strides))
    else:
        if any(s % dtype.itemsize for s in cai["strides"]):
            raise InputError("device array strides are not multiples of its item size")
        strides = tuple(int(s) // dtype.itemsize for s in cai["strides"])
    if cai.get("mask") is not None:
        raise InputError("masked device arrays are not supported")
    return DeviceArray(ptr=int(cai["data"][0]), shape=shape, strides=strides, dtype=dtype,
                       stream=cai.get("stream"), owner=obj)


def _from_dlpack(obj):
    try:
        import cupy  # noqa: PLC0415

        return cupy.from_dlpack(obj)
    except ImportError:
        pass
    try:
        import torch  # noqa: PLC0415

        return torch.from_dlpack(obj)
    except ImportError:
        raise InputError("a DLPack array needs CuPy or torch to be read on the GPU") from None


def _sync_producer(mod, a: DeviceArray) -> None:
    """Make a's device current and order our work after the producer's: its stream (CAI v3)
    or, if unknown, the whole device."""
    dev = mod.pointer_device(a.ptr) if a.ptr else -1
    if dev < 0 and int(np.prod(a.shape)) > 0:
        raise InputError("the array's memory is not CUDA device memory")
    if dev >= 0:
        mod.set_device(dev)
    if a.stream is None:
        mod.synchronize()
    elif int(a.stream) not in (0, 1):  # 1: legacy default stream, ordered with ours already
        mod.synchronize_stream(int(a.stream))


def _upload(mod, x) -> DeviceArray:
    """Copy a host array to the device (float32/float64 kept, other dtypes to float64)."""
    h = np.asarray(x)
    if h.dtype not in (np.float32, np.float64):
        h = h.astype(np.float64)
    h = np.ascontiguousarray(h)
    buf = mod.DeviceBuffer(max(h.nbytes, 1))
    if h.nbytes:
        buf.upload(h)
    strides = tuple(s // h.itemsize for s in h.strides)
    return DeviceArray(ptr=buf.ptr, shape=h.shape, strides=strides, dtype=h.dtype, stream=1, owner=buf)


def _window_array(W, what: str = "W") -> tuple[DeviceArray, int, int]:
    a = as_device_array(W) if _is_device_array(W) else _upload(_require(), W)
    if len(a.shape) != 2:
        raise InputError(f"{what} must be a 2-D array (n_steps, n_dims), got shape {a.shape}")
    T, d = a.shape
    if T < 2 or d < 1:
        raise InputError(f"{what} needs at least 2 steps and 1 dimension, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        raise InputError(f"{what} must be float32 or float64 on the GPU, got {a.dtype}")
    if a.strides[1] != 1 or a.strides[0] < d:
        raise InputError(f"{what} must have contiguous rows (strides {a.strides} elements); "
                         "make it C-contiguous first")
    return a, T, d


def _chunk_for(mod, T: int, d: int, msd: bool, gram: bool, precision: str, chunk: int | None,
               device: int = 0) -> int:
    if chunk is not None:
        return max(1, int(chunk))
    free = int(mod.device_info(max(device, 0))["free_memory"])
    budget = int(min(1 << 30, max(64 << 20, free // 4)))
    k = int(mod.suggest_chunk(T, msd, gram, precision, budget))
    return max(1, min(k, -(-d // 256) * 256))


# -- window sums -----------------------------------------------------------------
@dataclass
class WindowSums:
    """Float64 sums over the dimensions of one window (host copies).

    acf[τ] = Σ_i Σ_{t<T-τ} x_i(t) x_i(t+τ) (τ = 0…max_lag), sumsq[t] = Σ_i x_i(t)²,
    steps2[t] = Σ_i (x_i(t+1) - x_i(t))² (t = 0…T-2), gram = G (T, T) or None;
    x in weight units, so all in squared weight units.
    """

    T: int
    max_lag: int
    n_dims: int
    acf: np.ndarray
    sumsq: np.ndarray
    steps2: np.ndarray
    gram: np.ndarray | None = None

    def msd(self) -> tuple[np.ndarray, np.ndarray]:
        """(lags 1…max_lag in steps, MSD in squared weight units)."""
        from .msd import msd_from_sums  # noqa: PLC0415

        return msd_from_sums(self.acf, self.sumsq)

    def contour(self) -> np.ndarray:
        """P[t] = Σ_{k<t} |x(k+1) - x(k)| (weight units), P[0] = 0."""
        return np.concatenate(([0.0], np.cumsum(np.sqrt(np.maximum(self.steps2, 0.0)))))


def _check_precision(gram_precision: str) -> str:
    if gram_precision not in ("float32", "float64"):
        raise InputError(f"gram_precision must be 'float32' or 'float64', got {gram_precision!r}")
    return gram_precision


def _collect(eng, s, gram: bool, acf_from_gram: bool, what: str) -> WindowSums:
    eng.finish(s, acf_from_gram)
    eng.synchronize()
    out = WindowSums(T=int(s.T), max_lag=int(s.max_lag), n_dims=int(s.n_dims), acf=s.acf(),
                     sumsq=s.sumsq(), steps2=s.steps2(), gram=s.gram() if gram else None)
    if not (np.all(np.isfinite(out.sumsq)) and np.all(np.isfinite(out.acf))):
        raise InputError(f"{what} contains NaN or inf")
    return out


def window_sums(W, max_lag: int | None = None, *, msd: bool = True, gram: bool = False,
                gram_precision: str = "float64", acf_from: str = "auto",
                chunk: int | None = None) -> WindowSums:
    """All float64 sums of one in-memory window (T, d) on the GPU, in one pass.

    W is a device array (used in place) or a host array (copied to the device
    whole; for run files use :func:`window_sums_file`, which streams).

    acf_from: "fft" (batched cuFFT, O(d·T log T)), "gram" (acf[τ] = Σ_t G[t, t+τ],
    free once G is computed in float64: saves the transforms, ~4/5 of the
    memory traffic of a window) or "auto" (default): "gram" when the Gram matrix
    is computed in float64, else "fft". Both give the same sums to rounding.
    """
    mod = _require()
    a, T, d = _window_array(W)
    max_lag = T - 1 if max_lag is None else int(max_lag)
    if not 1 <= max_lag <= T - 1:
        raise InputError(f"max_lag must be in [1, T-1] = [1, {T - 1}], got {max_lag}")
    _check_precision(gram_precision)
    if acf_from not in ("auto", "fft", "gram"):
        raise InputError(f"acf_from must be 'auto', 'fft' or 'gram', got {acf_from!r}")
    if acf_from == "auto":
        acf_from = "gram" if (msd and gram and gram_precision == "float64") else "fft"
    from_gram = acf_from == "gram"
    if from_gram and not (gram and gram_precision == "float64"):
        raise InputError("acf_from='gram' needs gram=True with gram_precision='float64'")
    use_fft = msd and not from_gram
    _sync_producer(mod, a)  # also makes a's device the current one
    k = _chunk_for(mod, T, d, use_fft, gram, gram_precision, chunk, mod.pointer_device(a.ptr))
    eng = mod.WindowEngine(T, max_lag, k, use_fft, gram, gram_precision)
    s = mod.WindowSums(T, max_lag, gram)
    eng.accumulate(a.ptr, a.dtype.name, d, a.strides[0], s)
    return _collect(eng, s, gram, from_gram, "W")


def msd(W, max_lag: int | None = None, *, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Time-averaged MSD of a (T, d) device array over every lag (GPU twin of anodiff.msd).

    MSD(τ) = 1/(T-τ) Σ_{t<T-τ} Σ_i (w_i(t+τ) - w_i(t))², τ = 1…max_lag (steps),
    in squared weight units; returned as NumPy (lags int64, msd float64).
    """
    return window_sums(W, max_lag, chunk=chunk).msd()


def gram(W, *, gram_precision: str = "float64", chunk: int | None = None) -> np.ndarray:
    """G[s, t] = Σ_i x_i(s) x_i(t) of the window centred on its first row, (T, T) float64."""
    return window_sums(W, msd=False, gram=True, gram_precision=gram_precision, chunk=chunk).gram


# -- binned pair curves ----------------------------------------------------------------
@dataclass
class PairCurves:
    """Binned pair curves of one window (rows as in cpp/pair_math.hpp).

    S (3, n_s), log bins of contour length Δs: count, ΣΔs, ΣΔr².
    R (6, n_r), log bins of end-to-end distance Δr: count, ΣΔr, Σ(L_t - L_s)²,
    count of pairs with t-s ≥ 2, their ΣΔr, their Σh (transverse distance).
    """

    s_edges: np.ndarray
    r_edges: np.ndarray
    S: np.ndarray
    R: np.ndarray

    def _mean(self, total, count):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    @property
    def end_to_end(self):
        """(mean Δs, mean Δr²) per Δs bin (NaN where empty)."""
        return self._mean(self.S[1], self.S[0]), self._mean(self.S[2], self.S[0])

    @property
    def msl(self):
        """(mean Δr, MSL = mean (L_t - L_s)²) per Δr bin."""
        return self._mean(self.R[1], self.R[0]), self._mean(self.R[2], self.R[0])

    @property
    def transverse(self):
        """(mean Δr, mean transverse distance h) per Δr bin."""
        return self._mean(self.R[4], self.R[3]), self._mean(self.R[5], self.R[3])


def _log_edges(lo, hi, n):
    return np.exp(np.linspace(np.log(lo), np.log(hi), int(n) + 1))


def default_bins(G: np.ndarray, P: np.ndarray, n: int = 50):
    """Log bins spanning the data: Δs over [min step, P[-1]], Δr over [min step distance, max Δr]."""
    G = np.asarray(G, dtype=np.float64)
    d = np.diag(G)
    dr2 = d[:, None] + d[None, :] - 2.0 * G
    steps = np.diff(P)
    pos = steps[steps > 0]
    # edges padded by 1e-9 (relative) so that no value sits on an outer edge, where
    # host and device logarithms (1 ulp apart) could disagree about the bin
    s_lo = (pos.min() if pos.size else 1.0) * (1 - 1e-9)
    s_hi = max(P[-1] - P[0], s_lo) * (1 + 1e-9) + 1e-300
    r = np.sqrt(np.maximum(dr2[np.triu_indices_from(dr2, 1)], 0.0))
    rpos = r[r > 0]
    r_lo = (rpos.min() if rpos.size else 1.0) * (1 - 1e-9)
    r_hi = max(rpos.max() if rpos.size else 1.0, r_lo) * (1 + 1e-9) + 1e-300
    if s_hi <= s_lo:
        s_hi = s_lo * 2
    if r_hi <= r_lo:
        r_hi = r_lo * 2
    return (s_lo, s_hi, n), (r_lo, r_hi, n)


def pair_curves(G, P, loss=None, *, s_bins=None, r_bins=None, transverse: bool = True,
                device: str = "cuda") -> PairCurves:
    """Binned Δr² vs Δs, MSL vs Δr and transverse distance vs Δr of one window.

    G : (T, T) Gram matrix of the centred window (NumPy or float64 device array).
    P : (T,) contour length from the start, P[t] = Σ_{k<t} |x(k+1) - x(k)|.
    loss : (T,) loss at each step, or None (no MSL).
    s_bins, r_bins : (lo, hi, n) log bins over [lo, hi); default :func:`default_bins`.
    device : "cuda" (own kernel, anodiff._cuda) or "cpu" (serial host reference in
    anodiff._core, same per-pair arithmetic).
    """
    if device not in ("cuda", "cpu"):
        raise InputError(f"device must be 'cuda' or 'cpu', got {device!r}")
    P = np.ascontiguousarray(P, dtype=np.float64)
    T = P.shape[0]
    host_G = None if _is_device_array(G) else np.ascontiguousarray(G, dtype=np.float64)
    if host_G is not None and host_G.shape != (T, T):
        raise InputError(f"G must have shape (T, T) = ({T}, {T}), got {host_G.shape}")
    L = None if loss is None else np.ascontiguousarray(loss, dtype=np.float64)
    if L is not None and L.shape != (T,):
        raise InputError(f"loss must have shape ({T},), got {L.shape}")
    if s_bins is None or r_bins is None:
        Gh = host_G if host_G is not None else _download(G)
        ds, dr = default_bins(Gh, P)
        s_bins = s_bins or ds
        r_bins = r_bins or dr
    for name, b in (("s_bins", s_bins), ("r_bins", r_bins)):
        if not (len(b) == 3 and 0 < b[0] < b[1] and int(b[2]) > 0):
            raise InputError(f"{name} must be (lo, hi, n) with 0 < lo < hi and n > 0, got {b}")
    args = (float(s_bins[0]), float(s_bins[1]), int(s_bins[2]), float(r_bins[0]), float(r_bins[1]),
            int(r_bins[2]), bool(transverse))
    if device == "cpu":
        from . import _core  # noqa: PLC0415

        Gh = host_G if host_G is not None else _download(G)
        S, R = _core.pair_curves_serial(Gh, P, L, *args)
    else:
        mod = _require()
        if host_G is not None:
            buf = mod.DeviceBuffer(host_G.nbytes)
            buf.upload(host_G)
            ptr = buf.ptr
        else:
            a = as_device_array(G)
            if a.shape != (T, T) or a.dtype != np.float64 or a.strides != (T, 1):
                raise InputError(f"device G must be a C-contiguous ({T}, {T}) float64 array")
            _sync_producer(mod, a)
            ptr, buf = a.ptr, a
        S, R = mod.pair_curves(ptr, T, P, L, *args)
        del buf
    return PairCurves(s_edges=_log_edges(*s_bins), r_edges=_log_edges(*r_bins), S=S, R=R)


def _download(G) -> np.ndarray:
    """Host float64 copy of a CuPy array or torch tensor."""
    owner = as_device_array(G).owner
    if hasattr(owner, "get"):  # CuPy
        return np.asarray(owner.get(), dtype=np.float64)
    if hasattr(owner, "cpu"):  # torch
        return owner.detach().cpu().numpy().astype(np.float64)
    raise InputError("pass G as a NumPy, CuPy or torch array")


# -- Lévy histogram ----------------------------------------------------------------------
def histogram(x, lo: float, hi: float, n_bins: int, counts: np.ndarray | None = None) -> np.ndarray:
    """Streaming histogram of values on the GPU: counts[n_bins + 3] (uint64).

    counts[k], k < n_bins: values in [lo + k·w, lo + (k+1)·w), w = (hi-lo)/n_bins;
    counts[n_bins]: x < lo; counts[n_bins+1]: x ≥ hi; counts[n_bins+2]: NaN.
    Pass the previous `counts` to add a further block of values.
    """
    mod = _require()
    lo, hi, n_bins = float(lo), float(hi), int(n_bins)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi and n_bins > 0):
        raise InputError(f"histogram needs finite lo < hi and n_bins > 0, got ({lo}, {hi}, {n_bins})")
    if counts is None:
        counts = np.zeros(n_bins + 3, dtype=np.uint64)
    elif counts.dtype != np.uint64 or counts.shape != (n_bins + 3,):
        raise InputError(f"counts must be a uint64 array of length n_bins + 3 = {n_bins + 3}")
    if _is_device_array(x):
        a = as_device_array(x)
        n = int(np.prod(a.shape))
        contiguous = all(a.strides[i] == int(np.prod(a.shape[i + 1:])) for i in range(len(a.shape)))
        if len(a.shape) == 1:
            stride = a.strides[0]
        elif contiguous:
            stride = 1
        else:
            raise InputError("device values must be 1-D or C-contiguous")
        if a.dtype not in (np.float32, np.float64):
            raise InputError(f"values must be float32 or float64, got {a.dtype}")
        _sync_producer(mod, a)
        mod.histogram(a.ptr, a.dtype.name, n, stride, lo, hi, n_bins, counts)
    else:
        h = np.ascontiguousarray(x).ravel()
        if h.dtype not in (np.float32, np.float64):
            h = h.astype(np.float64)
        buf = mod.DeviceBuffer(max(h.nbytes, 1))
        buf.upload(h)
        mod.histogram(buf.ptr, h.dtype.name, h.size, 1, lo, hi, n_bins, counts)
    return counts


# -- streaming from HDF5 ---------------------------------------------------------------
def window_sums_file(path, T: int, tw_step: int, max_lag: int | None = None, *, t_start: int = 0,
                     t_stop: int | None = None, gram: bool = False, gram_precision: str = "float64",
                     acf_from: str = "auto",
                     progress: bool = False, allow_incomplete: bool = False,
                     memory_mb: float = 256.0, chunk: int | None = None):
    """Window sums of every window [t_w, t_w+T) of a run file, streamed to the GPU.

    Strips of `/weights` come from :meth:`anodiff.io.Trajectory.iter_strips`
    (prefetch thread); each is copied into one of two pinned host buffers,
    uploaded asynchronously on a copy stream and accumulated on the compute
    stream, so reading strip k+1, copying strip k and computing on strip k-1
    overlap. acf_from as in :func:`window_sums`. Returns (t_w array, list of WindowSums).
    """
    from .io import Trajectory  # noqa: PLC0415

    mod = _require()
    _check_precision(gram_precision)
    if acf_from not in ("auto", "fft", "gram"):
        raise InputError(f"acf_from must be 'auto', 'fft' or 'gram', got {acf_from!r}")
    if acf_from == "auto":
        acf_from = "gram" if (gram and gram_precision == "float64") else "fft"
    if acf_from == "gram" and not (gram and gram_precision == "float64"):
        raise InputError("acf_from='gram' needs gram=True with gram_precision='float64'")
    use_fft = acf_from == "fft"
    with Trajectory(path, allow_incomplete=allow_incomplete) as traj:
        starts = traj.window_starts(T, tw_step, t_start=t_start, t_stop=t_stop)
        T = int(T)
        max_lag = T - 1 if max_lag is None else int(max_lag)
        if not 1 <= max_lag <= T - 1:
            raise InputError(f"max_lag must be in [1, T-1] = [1, {T - 1}], got {max_lag}")
        windows = [(int(s), int(s) + T) for s in starts]
        dtype = np.dtype(np.float64 if traj.weights.dtype.itemsize > 4 else np.float32)
        k = _chunk_for(mod, T, traj.n_dims, use_fft, gram, gram_precision, chunk)
        eng = mod.WindowEngine(T, max_lag, k, use_fft, gram, gram_precision)
        sums = [mod.WindowSums(T, max_lag, gram) for _ in windows]
        streamer = None
        i = 0
        for strip in traj.iter_strips(windows, memory_mb=memory_mb, progress=progress,
                                      desc="windows (gpu)"):
            rows, width = strip.data.shape
            nbytes = rows * width * dtype.itemsize
            if streamer is None or nbytes > streamer.slot_bytes:
                eng.synchronize()
                streamer = None
                streamer = mod.Streamer(max(nbytes, 1), 2)
                i = 0
            slot = i % 2
            i += 1
            streamer.wait(slot)
            host = streamer.host_array(slot)[:nbytes].view(dtype).reshape(rows, width)
            np.copyto(host, strip.data, casting="unsafe")
            streamer.upload(slot, nbytes, eng)
            dev = streamer.device(slot)
            for w in strip.window_indices:
                offset = (windows[w][0] - strip.row0) * width * dtype.itemsize
                eng.accumulate(dev + offset, dtype.name, width, width, sums[w])
            streamer.release(slot, eng)
        out = []
        for w, s in enumerate(sums):
            out.append(_collect(eng, s, gram, not use_fft,
                                f"{traj.path}: /weights, window t_w={windows[w][0]}"))
        del streamer
        return np.asarray(starts, dtype=np.int64), out


def msd_windows(path, T: int, tw_step: int, max_lag: int | None = None, **kwargs):
    """GPU twin of :func:`anodiff.msd_windows` (same arguments and result)."""
    from .msd import MsdWindows  # noqa: PLC0415
    from .io import Trajectory  # noqa: PLC0415

    starts, sums = window_sums_file(path, T, tw_step, max_lag, **kwargs)
    curves = [s.msd() for s in sums]
    with Trajectory(path, allow_incomplete=kwargs.get("allow_incomplete", False)) as traj:
        n_dims, source = traj.n_dims, str(traj.path)
    return MsdWindows(t_w=starts, T=int(T), lags=curves[0][0], msd=np.stack([c for _, c in curves]),
                      n_dims=n_dims, source=source)
