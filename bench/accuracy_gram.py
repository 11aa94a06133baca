"""Accuracy of the default float32 Gram products of `anodiff.analyze` against a float64
direct reference, on the windows of tests/physics.py that plain float32 products lose.

    PYTHONPATH=python python bench/accuracy_gram.py [--T 1000] [--dims 40009]

Prints a Markdown table: the largest relative error of Δr² over every pair and of
MSD(τ) over every lag, per window kind (results in bench/RESULTS.md).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from physics import float32_hard_windows  # noqa: E402

from anodiff.analysis import accumulate_columns, finish, window_gram  # noqa: E402


def sqdist(G: np.ndarray) -> np.ndarray:
    d = np.diagonal(G)
    return d[:, None] + d[None, :] - 2 * G


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--dims", type=int, default=40_009)
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    n, rng = args.T, np.random.default_rng(args.seed)
    off = ~np.eye(n, dtype=bool)
    print("| window | max rel. error of Δr², any pair | max rel. error of MSD(τ), all τ |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.h5"
        for name, W in float32_hard_windows(rng, n, args.dims).items():
            W = W.astype(np.float32)
            with h5py.File(path, "w") as f:
                f.create_dataset("weights", data=W, chunks=(min(256, n), min(4096, args.dims)))
                f.create_dataset("loss", data=rng.standard_normal(n).astype(np.float32))
            parts = accumulate_columns(path, T=n)
            D = sqdist(window_gram(parts.windows[0]))
            X = W.astype(np.float64)
            X -= X[0]
            R = sqdist(X @ X.T)
            pair = np.max(np.abs(D - R)[off] / R[off])
            msd = finish(parts).windows[0].msd
            ref = np.array([np.diagonal(R, k).mean() for k in range(1, n)])
            print(f"| {name} | {pair:.1e} | {np.max(np.abs(msd - ref) / ref):.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
