"""Dask backend: sharded analysis equals the single-process one, and survives a lost worker."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import anodiff
from anodiff.cluster import map_shards, sum_partials
from anodiff.io import column_shards
from anodiff.msd import msd_partial_sums

from conftest import write_run

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as lc, Client(lc) as client:
        yield client


@pytest.fixture
def run_file(tmp_path, rng):
    W = (1e-2 * rng.standard_normal((240, 1037))).cumsum(axis=0).astype(np.float32) + 3.0
    return write_run(tmp_path / "run.h5", W, chunks=(60, 64)), W


def test_column_shards_cover_and_align():
    shards = column_shards(1037, 5, align=64)
    assert shards[0][0] == 0 and shards[-1][1] == 1037
    assert all(a == b for (_, a), (b, _) in zip(shards[:-1], shards[1:]))
    assert all(c0 % 64 == 0 for c0, _ in shards)
    assert column_shards(10, 50) == [(k, k + 1) for k in range(10)]


def test_sum_partials_nested():
    parts = [{"a": (np.ones(3), 2)}, {"a": (np.full(3, 2.0), 5)}]
    out = sum_partials(parts)
    np.testing.assert_array_equal(out["a"][0], [3, 3, 3])
    assert out["a"][1] == 7


def test_dask_equals_single_process(cluster, run_file):
    path, _ = run_file
    single = anodiff.msd_windows(path, T=100, tw_step=70)
    sharded = anodiff.msd_windows(path, T=100, tw_step=70, client=cluster, n_shards=7)
    np.testing.assert_allclose(sharded.msd, single.msd, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(sharded.t_w, single.t_w)


def test_dask_analyze_equals_single_process(cluster, tmp_path, rng):
    W = (1e-2 * rng.standard_normal((300, 517))).cumsum(axis=0).astype(np.float32)
    loss = np.abs(rng.standard_normal(300)).astype(np.float32)
    path = write_run(tmp_path / "a.h5", W, chunks=(100, 32), loss=loss)
    # float64 products: shards and the whole file then agree to float64 rounding
    single = anodiff.analyze(path, T=120, tw_step=90, gram_precision="float64")
    sharded = anodiff.analyze(path, T=120, tw_step=90, client=cluster, n_shards=5,
                              gram_precision="float64")
    assert sharded.t0 == single.t0
    assert len(sharded.windows) == len(single.windows)
    for a, b in zip(sharded.windows, single.windows):
        np.testing.assert_allclose(a.msd, b.msd, rtol=1e-10)
        for key in ("alpha", "alpha2", "D_f", "msl_2H"):
            va, vb = getattr(a, key), getattr(b, key)
            assert (va is None) == (vb is None)
            if va is not None:
                assert va == pytest.approx(vb, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(a.contour.y, b.contour.y, rtol=1e-10)
        np.testing.assert_allclose(a.msl.y, b.msl.y, rtol=1e-10)
    # the default float32 products: equal to their rounding
    fast = anodiff.analyze(path, T=120, tw_step=90, client=cluster, n_shards=5)
    for a, b in zip(fast.windows, single.windows):
        np.testing.assert_allclose(a.msd, b.msd, rtol=1e-6)
        assert a.alpha == pytest.approx(b.alpha, rel=1e-6)


def _die_once(path, windows, max_lag, *, columns, marker_dir):
    """Kill the worker process the first time the shard starting at column 0 runs."""
    marker = os.path.join(marker_dir, f"killed-{columns[0]}")
    if columns[0] == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return msd_partial_sums(path, windows, max_lag, columns=columns)


def test_worker_killed_mid_analysis_is_retried(cluster, run_file, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path, W = run_file
    windows = [(0, 120), (100, 220)]
    shards = column_shards(W.shape[1], 6, align=64)
    acf, sumsq = map_shards(cluster, _die_once, shards, str(path), windows, 119,
                            marker_dir=str(tmp_path))
    assert os.path.exists(tmp_path / "killed-0")
    ref_acf, ref_sumsq = msd_partial_sums(path, windows, 119)
    np.testing.assert_allclose(sumsq, ref_sumsq, rtol=1e-10)
    np.testing.assert_allclose(acf, ref_acf, rtol=1e-10, atol=1e-10 * np.abs(ref_acf).max())
