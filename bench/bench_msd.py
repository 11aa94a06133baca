"""MSD of one window over every lag: anodiff vs tidynamics, freud and a chunked scipy.fft baseline.

All on the same float32 data, T = 1000 steps, d = 100,000 (and d = 1,000,000
with ANODIFF_BENCH_FULL=1). Every contender computes the time-averaged MSD
for all lags 1…T-1 of the centred window and is checked against anodiff's
result before timing. Peers that would take minutes at full d run on a
column subset and are scaled linearly in d (stated in the test id).

    PYTHONPATH=python python -m pytest bench/bench_msd.py --benchmark-only
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.fft

import anodiff

T = 1000
SIZES = [100_000] + ([1_000_000] if os.environ.get("ANODIFF_BENCH_FULL") == "1" else [])
THREADS = anodiff.get_num_threads()
PEER_SUBSET = 20_000  # columns the slow pure-Python peers see; their time is scaled by d / subset


@pytest.fixture(scope="module", params=SIZES, ids=lambda d: f"d={d}")
def data(request):
    d = request.param
    rng = np.random.default_rng(0)
    W = np.empty((T, d), dtype=np.float32)
    for c in range(0, d, 50_000):
        n = min(50_000, d - c)
        W[:, c:c + n] = (1e-2 * rng.standard_normal((T, n), dtype=np.float32)).cumsum(axis=0) + 1.0
    reference = anodiff.msd(W)[1]
    return W, reference


def scipy_fft_msd(W, chunk=2048, workers=THREADS):
    """Chunked baseline: per column strip, rfft/irfft along time (contiguous), float64."""
    T_, d = W.shape
    n = scipy.fft.next_fast_len(2 * T_ - 1, real=True)
    acf = np.zeros(T_)
    sumsq = np.zeros(T_)
    for c in range(0, d, chunk):
        x = W[:, c:c + chunk].T.astype(np.float64)
        x -= x[:, :1]
        X = scipy.fft.rfft(x, n=n, axis=1, workers=workers)
        acf += scipy.fft.irfft(X.real ** 2 + X.imag ** 2, n=n, axis=1, workers=workers)[:, :T_].sum(axis=0)
        sumsq += (x * x).sum(axis=0)
    lags = np.arange(1, T_)
    prefix = np.concatenate(([0.0], np.cumsum(sumsq)))
    return (prefix[T_ - lags] + prefix[T_] - prefix[lags] - 2 * acf[1:]) / (T_ - lags)


def tidynamics_msd(W):
    import tidynamics

    return tidynamics.msd(W.astype(np.float64))[1:]


def freud_msd(W):
    import freud

    d3 = W.shape[1] - W.shape[1] % 3
    pos = W[:, :d3].astype(np.float64).reshape(W.shape[0], d3 // 3, 3)
    msd = freud.msd.MSD(mode="window")
    msd.compute(pos)
    # freud averages over particles: multiply back to a sum over dimensions.
    return msd.msd[1:] * (d3 // 3)


def test_anodiff(benchmark, data):
    W, reference = data
    benchmark.extra_info.update(d=W.shape[1], T=T, threads=THREADS, isa=anodiff._core.msd_isa())
    _, out = benchmark.pedantic(anodiff.msd, args=(W,), rounds=3, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(out, reference, rtol=1e-9)


def test_scipy_fft_chunked(benchmark, data):
    W, reference = data
    benchmark.extra_info.update(d=W.shape[1], T=T, threads=THREADS)
    out = benchmark.pedantic(scipy_fft_msd, args=(W,), rounds=2, iterations=1)
    np.testing.assert_allclose(out, reference, rtol=1e-8)


def test_tidynamics_subset(benchmark, data):
    """tidynamics on PEER_SUBSET columns; multiply its time by d / PEER_SUBSET."""
    pytest.importorskip("tidynamics")
    W, _ = data
    sub = np.ascontiguousarray(W[:, :PEER_SUBSET])
    benchmark.extra_info.update(d=W.shape[1], columns_timed=PEER_SUBSET, scale=W.shape[1] / PEER_SUBSET)
    out = benchmark.pedantic(tidynamics_msd, args=(sub,), rounds=1, iterations=1)
    np.testing.assert_allclose(out, anodiff.msd(sub)[1], rtol=1e-8)


def test_freud_subset(benchmark, data):
    """freud.msd.MSD(mode='window') on PEER_SUBSET columns as particles × 3; time × d / PEER_SUBSET."""
    pytest.importorskip("freud")
    W, _ = data
    sub = np.ascontiguousarray(W[:, :PEER_SUBSET - PEER_SUBSET % 3])
    benchmark.extra_info.update(d=W.shape[1], columns_timed=sub.shape[1], scale=W.shape[1] / sub.shape[1])
    out = benchmark.pedantic(freud_msd, args=(sub,), rounds=1, iterations=1)
    # freud accumulates in single precision: ~4e-4 relative here, not the 1e-9 of the others.
    np.testing.assert_allclose(out, anodiff.msd(sub)[1], rtol=2e-3)
