"""Analysis time against the number of local Dask workers (1, 2), single process alongside.

A generated run file (n_steps = 2,000, d = 200,000 float32 by default;
ANODIFF_BENCH_CLUSTER_DIMS overrides d), T = 1000, tw_step = 500: the
streamed analysis in one process, then on a LocalCluster of 1 and 2 worker
processes (one thread each) over column shards.

    PYTHONPATH=python python -m pytest bench/bench_cluster.py --benchmark-only
"""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import anodiff

distributed = pytest.importorskip("distributed")

N_STEPS = 2000
DIMS = int(os.environ.get("ANODIFF_BENCH_CLUSTER_DIMS", 200_000))
T, TW_STEP = 1000, 500


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster") / "run.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        w = f.create_dataset("weights", shape=(N_STEPS, DIMS), dtype=np.float32, chunks=(256, 4096))
        for c in range(0, DIMS, 65536):
            n = min(65536, DIMS - c)
            w[:, c:c + n] = (1e-3 * rng.standard_normal((N_STEPS, n), dtype=np.float32)).cumsum(axis=0)
        f.create_dataset("loss", data=np.linspace(2, 0.1, N_STEPS, dtype=np.float32))
    return path


def analysis(path, client=None):
    if hasattr(anodiff, "analyze"):
        return anodiff.analyze(path, T=T, tw_step=TW_STEP, client=client)
    return anodiff.msd_windows(path, T=T, tw_step=TW_STEP, client=client)


def test_single_process(benchmark, run_file):
    anodiff.set_num_threads(1)
    try:
        benchmark.extra_info.update(workers=0, threads=1, d=DIMS, n_steps=N_STEPS)
        benchmark.pedantic(analysis, args=(run_file,), rounds=1, iterations=1)
    finally:
        anodiff.set_num_threads(None)


@pytest.mark.parametrize("workers", [1, 2])
def test_local_cluster(benchmark, run_file, workers):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40,
                      env={"ANODIFF_NUM_THREADS": "1"}) as lc, Client(lc) as client:
        benchmark.extra_info.update(workers=workers, threads=1, d=DIMS, n_steps=N_STEPS)
        benchmark.pedantic(analysis, args=(run_file, client), rounds=1, iterations=1)
