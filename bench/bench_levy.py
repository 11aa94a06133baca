"""Lévy α-stable MLE: anodiff vs scipy.stats.levy_stable.fit vs pystable (libstable), same samples.

Run:  PYTHONPATH=python python -m pytest bench/bench_levy.py --benchmark-only -s
Sizes (environment): LEVY_BENCH_N (default 1e6, anodiff), LEVY_BENCH_N_SCIPY (default 1000),
LEVY_BENCH_N_PYSTABLE (default 1e5), LEVY_BENCH_STREAM_N (default 1e8 values streamed from HDF5).
Peers that cannot run at the full n are timed on a subsample and their time is scaled linearly
in n (each likelihood evaluation is O(n)); anodiff is also timed at the peer's n, so every ratio
is stated both at equal n (measured) and at the full n (scaled).

pystable ships a libstable.so linked against libgsl.so.25; on Debian 12 it loads with
libgsl27 and a compat symlink libgsl.so.25 -> libgsl.so.27 on LD_LIBRARY_PATH
(set LEVY_PYSTABLE_LIB to the .so). Without it, the pystable rows are skipped.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from scipy import stats

from anodiff.levy import fit_levy_stable, fit_levy_stable_stream

ALPHA = 1.46
N = int(float(os.environ.get("LEVY_BENCH_N", 1e6)))
N_SCIPY = int(float(os.environ.get("LEVY_BENCH_N_SCIPY", 1000)))
N_PYSTABLE = int(float(os.environ.get("LEVY_BENCH_N_PYSTABLE", 1e5)))
N_STREAM = int(float(os.environ.get("LEVY_BENCH_STREAM_N", 1e8)))
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(20261123)
    return stats.levy_stable.rvs(ALPHA, 0.0, size=N, random_state=rng) * 1e-4  # raw gradient scale


def _record(name, n, seconds, alpha):
    RESULTS[name] = {"n": n, "s": seconds, "alpha": alpha}
    print(f"\n[levy-bench] {name}: n={n} time={seconds:.3f}s alpha={alpha:.5f} |err|={abs(alpha - ALPHA):.5f}")


def _run(benchmark, fn):
    t, c = time.perf_counter(), time.process_time()
    out = benchmark.pedantic(fn, rounds=1, iterations=1)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    print(f"\n[levy-bench]   wall {dt:.3f}s, process CPU {dc:.3f}s")
    return out, dt


def test_anodiff_full(benchmark, sample):
    fit, dt = _run(benchmark, lambda: fit_levy_stable(sample))
    benchmark.extra_info.update(n=N, alpha=fit.alpha, ci=fit.ci["alpha"])
    _record("anodiff symmetric", N, dt, fit.alpha)


def test_anodiff_full_general(benchmark, sample):
    fit, dt = _run(benchmark, lambda: fit_levy_stable(sample, symmetric=False))
    benchmark.extra_info.update(n=N, alpha=fit.alpha, beta=fit.beta)
    _record("anodiff general beta", N, dt, fit.alpha)


def test_anodiff_at_scipy_n(benchmark, sample):
    x = sample[:N_SCIPY]
    fit, dt = _run(benchmark, lambda: fit_levy_stable(x))
    _record("anodiff @scipy n", N_SCIPY, dt, fit.alpha)


def test_scipy(benchmark, sample):
    x = sample[:N_SCIPY] / 1e-4  # scipy's fit fails on the raw 1e-4 scale: give it standardised data
    (a, b, loc, scale), dt = _run(benchmark, lambda: stats.levy_stable.fit(x))
    benchmark.extra_info.update(n=N_SCIPY, alpha=a)
    _record("scipy levy_stable.fit", N_SCIPY, dt, a)


def _pystable():
    lib = os.environ.get("LEVY_PYSTABLE_LIB")
    try:
        import pystable
    except ImportError as exc:
        pytest.skip(f"pystable not installed ({exc})")
    if lib is None:
        lib = os.path.join(os.path.dirname(pystable.__file__), "_extensions/linux/gclib-2-33/libstable.so")
    try:
        pystable.create(1.5, 0.0, 1.0, 0.0, 0, path=lib)
    except OSError as exc:
        pytest.skip(f"pystable's libstable does not load ({exc})")
    return pystable, lib


def test_anodiff_at_pystable_n(benchmark, sample):
    x = sample[:N_PYSTABLE]
    fit, dt = _run(benchmark, lambda: fit_levy_stable(x, symmetric=False))
    _record("anodiff general @pystable n", N_PYSTABLE, dt, fit.alpha)


def test_pystable(benchmark, sample):
    pystable, lib = _pystable()
    x = (sample[:N_PYSTABLE] / 1e-4).tolist()

    def fit():
        d = pystable.create(1.5, 0.0, 1.0, 0.0, 0, path=lib)
        pystable.fit(d, x, len(x), path=lib)
        return d.contents.alpha

    a, dt = _run(benchmark, fit)
    benchmark.extra_info.update(n=N_PYSTABLE, alpha=a)
    _record("pystable fit", N_PYSTABLE, dt, a)


def test_stream_hdf5(benchmark, tmp_path_factory):
    import h5py

    d = tmp_path_factory.mktemp("levy")
    path = d / "run.h5"
    K = 10_000
    n_steps = max(1, N_STREAM // K)
    base = (stats.levy_stable.rvs(ALPHA, 0.0, size=(1000, K), random_state=np.random.default_rng(1)) * 1e-4
            ).astype(np.float32)
    with h5py.File(path, "w") as f:
        g = f.create_dataset("grads", shape=(n_steps, K), dtype=np.float32, chunks=(min(256, n_steps), 4096))
        for r in range(0, n_steps, 1000):
            r1 = min(n_steps, r + 1000)
            g[r:r1] = base[: r1 - r]
        f.create_dataset("grads_index", data=np.arange(K, dtype=np.int64))
        f.attrs.update(lr=0.1, momentum=0.0, weight_decay=0.0, complete=True)
    (fit, _, _), dt = _run(benchmark, lambda: fit_levy_stable_stream(path, progress=False))
    benchmark.extra_info.update(n=n_steps * K, alpha=fit.alpha)
    _record("anodiff stream HDF5", n_steps * K, dt, fit.alpha)
    os.remove(path)


def test_summary(benchmark):
    """Prints the ratios (run last)."""
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    r = RESULTS
    if "anodiff symmetric" in r and "scipy levy_stable.fit" in r and "anodiff @scipy n" in r:
        eq = r["scipy levy_stable.fit"]["s"] / r["anodiff @scipy n"]["s"]
        full = r["scipy levy_stable.fit"]["s"] * N / N_SCIPY / r["anodiff symmetric"]["s"]
        print(f"\n[levy-bench] scipy/anodiff at n={N_SCIPY}: {eq:.0f}x; at n={N} (scipy scaled linearly): {full:.0f}x")
    if "pystable fit" in r and "anodiff general @pystable n" in r:
        eq = r["pystable fit"]["s"] / r["anodiff general @pystable n"]["s"]
        full = r["pystable fit"]["s"] * N / N_PYSTABLE / r["anodiff general beta"]["s"] if "anodiff general beta" in r else float("nan")
        full_sym = r["pystable fit"]["s"] * N / N_PYSTABLE / r["anodiff symmetric"]["s"] if "anodiff symmetric" in r else float("nan")
        print(f"\n[levy-bench] pystable/anodiff(general) at n={N_PYSTABLE}: {eq:.1f}x; at n={N} (pystable scaled): "
              f"general {full:.1f}x, symmetric {full_sym:.1f}x")
    if "anodiff stream HDF5" in r:
        s = r["anodiff stream HDF5"]
        print(f"\n[levy-bench] stream: {s['n']:.3g} values in {s['s']:.1f}s -> 1e9 projected {s['s'] * 1e9 / s['n']:.1f}s")
