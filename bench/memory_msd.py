"""Peak RSS of `anodiff msd` on a large run file (issue: d = 2,000,000, n_steps = 2,000).

    python bench/memory_msd.py [--dims 2000000] [--steps 2000] [--path /tmp/big.h5] [--keep]

Generates the file in column strips (a random walk per weight, float32,
chunks of 256 steps × 4096 dims, ~16 GB at the default size), runs
`python -m anodiff msd` on it in a subprocess and reports the child's peak
resident set size and the throughput.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import h5py
import numpy as np


def generate(path, n_steps, n_dims, strip=65536):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        w = f.create_dataset("weights", shape=(n_steps, n_dims), dtype=np.float32,
                             chunks=(min(n_steps, 256), 4096))
        for c in range(0, n_dims, strip):
            n = min(strip, n_dims - c)
            block = (1e-3 * rng.standard_normal((n_steps, n), dtype=np.float32)).cumsum(axis=0)
            w[:, c:c + n] = block + 0.1
        f.attrs["complete"] = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, default=2_000_000)
    ap.add_argument("--steps", type=int, default=2_000)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--path", default="/tmp/anodiff_memory_bench.h5")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        generate(args.path, args.steps, args.dims)
        return 0
    if not os.path.exists(args.path):
        # Generate in a child process: a child forked from a parent that had
        # allocated gigabytes would report the parent's pages in its peak RSS.
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate-only", "--dims", str(args.dims),
                        "--steps", str(args.steps), "--path", args.path], check=True)
        print(f"generated {args.path} in {time.perf_counter() - t:.0f} s")
    size = os.path.getsize(args.path)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "anodiff", "msd", args.path, "--T", str(args.T),
                           "--out", "/tmp/anodiff_memory_bench_msd.h5", "--no-progress"],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(proc.stdout.strip() or proc.stderr.strip())
    print(f"file {size / 2**30:.2f} GiB, d={args.dims}, n_steps={args.steps}, T={args.T}")
    print(f"wall {elapsed:.1f} s, {size / elapsed / 2**30:.2f} GiB/s, peak RSS {peak_kb / 1024:.0f} MiB")
    if not args.keep:
        os.remove(args.path)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
