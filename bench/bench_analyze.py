"""Speed and scale of `anodiff.analyze` against its two floors, measured in the same run.

Floors (issue 5): one sequential read of /weights with h5py, plus one float32
SYRK (``X @ X.T`` with numpy's BLAS) per window. The analysis must take at
most 1.5× their sum.

pytest-benchmark (peers side by side)::

    PYTHONPATH=python python -m pytest bench/bench_analyze.py --benchmark-only \
        --benchmark-json=/tmp/bench_analyze.json

Environment: ANODIFF_BENCH_STEPS (5000), ANODIFF_BENCH_DIMS (270000),
ANODIFF_BENCH_T (1000), ANODIFF_BENCH_DIR (a temporary directory on /tmp).
The generated file (n_steps × d float32, 5.4 GB at the defaults) is deleted
afterwards.

Standalone (the same measurements, best of ``--rounds`` each, plus peak RSS
of the analysis in a subprocess; used for the ResNet-110-width scale run)::

    PYTHONPATH=python python bench/bench_analyze.py --rounds 3 --pin
    PYTHONPATH=python python bench/bench_analyze.py --steps 2000 --dims 1730714 --rss

``--pin`` locks the file's pages in the page cache (mmap + mlock) for the
whole run, so that the floors and the analysis all read from memory: on a
machine whose page cache is smaller than, or shared beyond, the file, reads
would otherwise come from memory in one measurement and from the disk in the
next.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

STEPS = int(os.environ.get("ANODIFF_BENCH_STEPS", 5000))
DIMS = int(os.environ.get("ANODIFF_BENCH_DIMS", 270_000))
T = int(os.environ.get("ANODIFF_BENCH_T", 1000))


def generate(path: Path, n_steps: int, d: int, seed: int = 0, block_mb: float = 384.0) -> Path:
    """A random walk (steps ~1e-3, offset ~1) written in column blocks of whole HDF5 chunks
    (chunked like `anodiff train`: 256 steps × 4096 dims), so memory stays ~block_mb."""
    rng = np.random.default_rng(seed)
    chunk_cols = min(d, 4096)
    width = max(1, int(block_mb * 2**20 // (12 * n_steps * chunk_cols))) * chunk_cols
    with h5py.File(path, "w") as f:
        w = f.create_dataset("weights", shape=(n_steps, d), dtype=np.float32,
                             chunks=(min(n_steps, 256), chunk_cols))
        for c0 in range(0, d, width):
            c1 = min(d, c0 + width)
            steps = rng.standard_normal((n_steps, c1 - c0), dtype=np.float32)
            steps *= np.float32(1e-3)
            steps[0] = rng.standard_normal(c1 - c0, dtype=np.float32)
            blk = np.cumsum(steps, axis=0, dtype=np.float64)
            w[:, c0:c1] = blk.astype(np.float32)
            del steps, blk
        f.create_dataset("loss", data=rng.standard_normal(n_steps).astype(np.float32))
        f.attrs["complete"] = True
        f.attrs["n_steps_written"] = n_steps
    return path


def read_all(path: Path, rows: int = 256) -> int:
    """Floor 1: one sequential read of /weights in row blocks (bytes read)."""
    total = 0
    with h5py.File(path, "r") as f:
        w = f["weights"]
        n, d = w.shape
        buf = np.empty((rows, d), dtype=np.float32)
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            w.read_direct(buf[: r1 - r0], np.s_[r0:r1])
            total += (r1 - r0) * d * 4
    return total


def read_window(path: Path, t_w: int, T: int) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["weights"][t_w: t_w + T]


def syrk(X: np.ndarray) -> np.ndarray:
    """Floor 2 (per window): float32 X Xᵀ with numpy's BLAS (SSYRK)."""
    return X @ X.T


def pin_in_page_cache(path: Path):
    """mmap + mlock the whole file (returns the mapping; its pages stay cached while it lives).
    Returns None, with a note on stderr, where the pages cannot be locked."""
    import ctypes  # noqa: PLC0415
    import mmap  # noqa: PLC0415

    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = mmap.mmap(fd, os.fstat(fd).st_size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    view = np.frombuffer(mapping, dtype=np.uint8)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlock(ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(view.size)) != 0:
        print(f"note: cannot lock {path} in memory (errno {ctypes.get_errno()}); not pinned",
              file=sys.stderr)
        return None
    return mapping, view


def window_starts(n_steps: int, T: int) -> list[int]:
    return list(range(0, n_steps - T + 1, T))


def run_analysis(path: Path, T: int, gram_precision: str = "float32"):
    import anodiff  # noqa: PLC0415

    return anodiff.analyze(path, T=T, tw_step=T, gram_precision=gram_precision)


# -- pytest-benchmark ------------------------------------------------------

@pytest.fixture(scope="module")
def run_file():
    base = Path(os.environ.get("ANODIFF_BENCH_DIR") or tempfile.mkdtemp(prefix="anodiff_bench_"))
    base.mkdir(parents=True, exist_ok=True)
    path = generate(base / "bench_run.h5", STEPS, DIMS)
    yield path
    path.unlink(missing_ok=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.benchmark(group="analyze")
def test_floor_read(benchmark, run_file):
    benchmark.extra_info.update(n_steps=STEPS, d=DIMS)
    benchmark.pedantic(read_all, args=(run_file,), rounds=3, iterations=1)


@pytest.mark.benchmark(group="analyze")
def test_floor_syrk_per_window(benchmark, run_file):
    starts = window_starts(STEPS, T)
    it = iter(starts)
    benchmark.extra_info.update(n_windows=len(starts), T=T, note="stats are per window")
    benchmark.pedantic(syrk, setup=lambda: ((read_window(run_file, next(it), T),), {}),
                       rounds=len(starts), iterations=1)


@pytest.mark.benchmark(group="analyze")
@pytest.mark.parametrize("gram_precision", ["float32", "float64"])
def test_analyze(benchmark, run_file, gram_precision):
    benchmark.extra_info.update(n_steps=STEPS, d=DIMS, T=T, gram_precision=gram_precision)
    res = benchmark.pedantic(run_analysis, args=(run_file, T, gram_precision), rounds=3,
                             iterations=1)
    assert len(res.windows) == len(window_starts(STEPS, T))


# -- standalone --------------------------------------------------------------

def _child_analyze(path: str, T: int, gram_precision: str) -> None:
    t = time.perf_counter()
    res = run_analysis(Path(path), T, gram_precision)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    print(json.dumps({"analyze_s": dt, "peak_rss_mib": rss, "n_windows": len(res.windows),
                      "alpha": [w.alpha for w in res.windows]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--dims", type=int, default=DIMS)
    ap.add_argument("--T", type=int, default=T)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--rss", action="store_true", help="run the analysis in a subprocess, report peak RSS")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-floors", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="best of this many rounds of each timing")
    ap.add_argument("--pin", action="store_true", help="lock the file in the page cache (see above)")
    ap.add_argument("--precision", nargs="+", default=["float32", "float64"],
                    help="gram precisions to time (default both)")
    ap.add_argument("--child", nargs=3, metavar=("PATH", "T", "PREC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child_analyze(args.child[0], int(args.child[1]), args.child[2])
        return 0
    base = Path(args.dir or tempfile.mkdtemp(prefix="anodiff_bench_"))
    base.mkdir(parents=True, exist_ok=True)
    path = base / "bench_run.h5"
    out = {"n_steps": args.steps, "d": args.dims, "T": args.T, "load_before": os.getloadavg()}
    try:
        t = time.perf_counter()
        if not path.exists():
            generate(path, args.steps, args.dims)
        out["generate_s"] = time.perf_counter() - t
        out["file_gb"] = path.stat().st_size / 1e9
        starts = window_starts(args.steps, args.T)
        out["n_windows"] = len(starts)
        pinned = pin_in_page_cache(path) if args.pin else None  # noqa: F841 - kept alive
        out["pinned"] = pinned is not None
        timings: dict[str, list[float]] = {}
        rss: dict[str, float] = {}
        for _ in range(args.rounds):
            if not args.skip_floors:
                t = time.perf_counter()
                read_all(path)
                timings.setdefault("floor_read_s", []).append(time.perf_counter() - t)
                syrk_s = 0.0
                for s in starts:
                    X = read_window(path, s, args.T)
                    t = time.perf_counter()
                    syrk(X)
                    syrk_s += time.perf_counter() - t
                    del X
                timings.setdefault("floor_syrk_s", []).append(syrk_s)
            for prec in args.precision:
                if args.rss:
                    cmd = [sys.executable, __file__, "--child", str(path), str(args.T), prec]
                    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    child = json.loads(r.stdout.strip().splitlines()[-1])
                    timings.setdefault(prec, []).append(child["analyze_s"])
                    rss[prec] = max(rss.get(prec, 0.0), child["peak_rss_mib"])
                else:
                    t = time.perf_counter()
                    run_analysis(path, args.T, prec)
                    timings.setdefault(prec, []).append(time.perf_counter() - t)
        out["rounds"] = {k: [round(v, 3) for v in vs] for k, vs in timings.items()}
        for key in ("floor_read_s", "floor_syrk_s"):
            if key in timings:
                out[key] = min(timings[key])
        for prec in args.precision:
            res = {"analyze_s": min(timings[prec])}
            if prec in rss:
                res["peak_rss_mib"] = rss[prec]
            if "floor_read_s" in out:
                res["ratio"] = res["analyze_s"] / (out["floor_read_s"] + out["floor_syrk_s"])
            res["throughput_gb_s"] = out["file_gb"] / res["analyze_s"]
            for name, steps in (("resnet110_b128", 195_500), ("resnet110_b512", 48_900)):
                res[f"projected_h_{name}"] = steps * args.dims * 4 / 1e9 / res["throughput_gb_s"] / 3600
            out[prec] = res
        if "floor_read_s" in out:
            out["floor_s"] = out["floor_read_s"] + out["floor_syrk_s"]
        out["load_after"] = os.getloadavg()
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
