"""GPU window engine vs a straightforward CuPy implementation, and HDF5 streaming.

Run on a machine with a CUDA device, CuPy and anodiff._cuda:

    PYTHONPATH=python python -m pytest bench/bench_gpu.py -s      (or scripts/gpu-check --bench)

(not --benchmark-only: the last test prints the table and uses no benchmark fixture)

Sizes (environment variables, defaults are the issue's):
    ANODIFF_BENCH_T=1000  ANODIFF_BENCH_D=1700000     window already on the GPU (float32)
    ANODIFF_BENCH_H5_STEPS=2000  ANODIFF_BENCH_H5_D=400000  HDF5 file (float32, T windows, tw_step=T)

Reported (printed as a Markdown table at the end, also in extra_info):
    * device-to-device copy of the window (cupy.copyto): copy bandwidth = 2·bytes / time
      (read + write), the card's practical memory bandwidth;
    * anodiff window (float64 Gram by cuBLAS DSYRK, acf from its diagonals, step norms;
      the default), the same with the acf from batched cuFFT, MSD only (cuFFT), and the
      float32-Gram variant (SSYRK, acf by cuFFT);
    * the CuPy baseline: centre, cupy.fft.rfft/irfft autocorrelation, cupy matmul Gram
      (float32), sums in float64, over column chunks of 65,536 (the whole window at
      once needs > 40 GB);
    * achieved bytes/s = window bytes / time, as a fraction of the copy bandwidth;
    * HDF5: anodiff.gpu.window_sums_file (MSD + Gram of every window) against a plain
      read of the same strips (Trajectory.iter_strips, no compute) and h5py reading
      the whole dataset.
Skipped without a GPU.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import anodiff

pytestmark = pytest.mark.skipif(not anodiff.cuda_available(),
                                reason=f"no GPU: {anodiff.cuda_unavailable_reason()}")

T = int(os.environ.get("ANODIFF_BENCH_T", 1000))
D = int(os.environ.get("ANODIFF_BENCH_D", 1_700_000))
H5_STEPS = int(os.environ.get("ANODIFF_BENCH_H5_STEPS", 2000))
H5_D = int(os.environ.get("ANODIFF_BENCH_H5_D", 400_000))
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


@pytest.fixture(scope="module")
def window(cp):
    """(T, D) float32 random walk on the GPU: offset ~1e3, steps 1e-4."""
    rs = cp.random.RandomState(12345)
    W = cp.empty((T, D), dtype=cp.float32)
    row = (1e3 + rs.standard_normal(D, dtype=cp.float64))
    for t in range(T):  # row by row: no (T, D) float64 temporary
        W[t] = row.astype(cp.float32)
        row += 1e-4 * rs.standard_normal(D, dtype=cp.float64)
    cp.cuda.Device().synchronize()
    return W


def _run(benchmark, name, fn, rounds=3):
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    RESULTS[name] = benchmark.stats.stats.median
    return result


def test_copy_bandwidth(benchmark, cp, window):
    out = cp.empty_like(window)

    def copy():
        cp.copyto(out, window)
        cp.cuda.Device().synchronize()

    _run(benchmark, "copy", copy, rounds=5)
    benchmark.extra_info["copy_GBps"] = 2 * window.nbytes / RESULTS["copy"] / 1e9


def cupy_baseline(cp, W, chunk=65536):
    """Straightforward CuPy: per column chunk, rfft autocorrelation and a matmul Gram."""
    T_, d = W.shape
    n = 2
    while n < 2 * T_ - 1:
        n *= 2
    acf = cp.zeros(T_, dtype=cp.float64)
    sumsq = cp.zeros(T_, dtype=cp.float64)
    G = cp.zeros((T_, T_), dtype=cp.float64)
    for c0 in range(0, d, chunk):
        X = W[:, c0:c0 + chunk] - W[0, c0:c0 + chunk]
        F = cp.fft.rfft(X, n=n, axis=0)
        acf += cp.fft.irfft(F.real ** 2 + F.imag ** 2, n=n, axis=0)[:T_].sum(axis=1, dtype=cp.float64)
        sumsq += (X * X).sum(axis=1, dtype=cp.float64)
        G += cp.matmul(X, X.T).astype(cp.float64)
    cp.cuda.Device().synchronize()
    return acf, sumsq, G


def test_cupy_baseline(benchmark, cp, window):
    _run(benchmark, "cupy", lambda: cupy_baseline(cp, window))


@pytest.mark.parametrize("variant", ["window", "window_fft", "msd_only", "gram_float32"])
def test_anodiff_window(benchmark, cp, window, variant):
    kw = {"window": dict(gram=True),  # acf from the float64 Gram diagonals (the default)
          "window_fft": dict(gram=True, acf_from="fft"),
          "msd_only": dict(gram=False),
          "gram_float32": dict(gram=True, gram_precision="float32")}[variant]
    _run(benchmark, variant, lambda: anodiff.gpu.window_sums(window, **kw))
    benchmark.extra_info["GBps"] = window.nbytes / RESULTS[variant] / 1e9


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    h5py = pytest.importorskip("h5py")
    path = tmp_path_factory.mktemp("bench") / "run.h5"
    rng = np.random.default_rng(7)
    row = 1e3 + rng.standard_normal(H5_D)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("weights", shape=(H5_STEPS, H5_D), dtype=np.float32,
                              chunks=(min(H5_STEPS, 256), 4096))
        block = 256
        for t0 in range(0, H5_STEPS, block):
            rows = []
            for _ in range(min(block, H5_STEPS - t0)):
                rows.append(row.astype(np.float32))
                row = row + 1e-4 * rng.standard_normal(H5_D)
            ds[t0:t0 + len(rows)] = np.stack(rows)
        f.attrs["complete"] = True
    return path


def test_h5_plain_read(benchmark, run_file):
    from anodiff.io import Trajectory

    def read():
        with Trajectory(run_file) as traj:
            windows = [(s, s + T) for s in traj.window_starts(T, T)]
            return sum(strip.data.nbytes for strip in traj.iter_strips(windows))

    nbytes = _run(benchmark, "h5_read", read)
    RESULTS["h5_bytes"] = nbytes


def test_h5_h5py_read_all(benchmark, run_file):
    import h5py

    def read():
        with h5py.File(run_file, "r") as f:
            return f["weights"][...].nbytes

    _run(benchmark, "h5py_all", read)


def test_h5_gpu_end_to_end(benchmark, run_file):
    _run(benchmark, "h5_gpu", lambda: anodiff.gpu.window_sums_file(run_file, T, T, gram=True))


def test_report(cp):
    """Markdown table of the runs above (paste into bench/RESULTS.md)."""
    info = anodiff.gpu.device_info()
    nbytes = T * D * 4
    copy_bw = 2 * nbytes / RESULTS["copy"] if "copy" in RESULTS else float("nan")
    lines = [f"device: {info['name']} (sm_{info['compute_capability'][0]}{info['compute_capability'][1]}, "
             f"{info['total_memory'] / 2**30:.0f} GiB); window T={T}, d={D:,} float32 "
             f"({nbytes / 1e9:.2f} GB); copy bandwidth {copy_bw / 1e9:.0f} GB/s (2·bytes/time)",
             "", "| run | median time (ms) | bytes/s (GB/s) | fraction of copy bw | CuPy time / this |",
             "|---|---|---|---|---|"]
    for key in ("cupy", "window", "window_fft", "msd_only", "gram_float32"):
        if key in RESULTS:
            t = RESULTS[key]
            ratio = RESULTS.get("cupy", float("nan")) / t
            lines.append(f"| {key} | {t * 1e3:.1f} | {nbytes / t / 1e9:.0f} | "
                         f"{nbytes / t / copy_bw:.2f} | {ratio:.2f} |")
    if "h5_gpu" in RESULTS:
        hb = RESULTS.get("h5_bytes", H5_STEPS * H5_D * 4)
        lines += ["", f"HDF5 {H5_STEPS} steps × {H5_D:,} float32, windows T={T}, tw_step={T}:",
                  "| run | median time (s) | GB/s | time / plain read |", "|---|---|---|---|"]
        for key in ("h5_read", "h5py_all", "h5_gpu"):
            if key in RESULTS:
                t = RESULTS[key]
                lines.append(f"| {key} | {t:.2f} | {hb / t / 1e9:.2f} | {t / RESULTS['h5_read']:.2f} |")
    print("\n" + "\n".join(lines))
