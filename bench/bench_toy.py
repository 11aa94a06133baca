"""Walker-steps per second of the simplified SGD model: compiled `_core` walkers vs a NumPy loop.

Same landscape (1025 x 1025 diamond-square, extent 4, the defaults), same
starts (random high-altitude points), same random streams, both recording
positions and gradients (the compiled run skips the loss): both produce the
same trajectories (checked before timing, on a short run). The compiled
walkers run 1,000 iterations; the NumPy loop (vectorised over walkers, one
Python iteration per step) runs 1,000 iterations for 1 walker and 100 for
10,000 walkers. Rates = performed walker-steps (walkers stop when they leave
the landscape) / time, in `extra_info["walker_steps"]`.

    PYTHONPATH=python python -m pytest bench/bench_toy.py --benchmark-only
"""
from __future__ import annotations

import numpy as np
import pytest

import anodiff
from anodiff import toy


@pytest.fixture(scope="module")
def landscape():
    return toy.fractal_landscape(1025, 0, select=False)


def _starts(L, n):
    return toy.start_positions(L, n, seed=1)


def _steps(w):
    finite = np.isfinite(w.traj[:, 1:, 0])
    return int(finite.sum())


def test_same_trajectories(landscape):
    st = _starts(landscape, 200)
    a = toy.walk(landscape, st, 100, seed=3)
    b = toy.walk_numpy(landscape, st, 100, seed=3)
    np.testing.assert_allclose(a.traj, b.traj, atol=1e-9)


@pytest.mark.parametrize("n", [1, 10_000], ids=lambda n: f"walkers={n}")
def test_compiled(benchmark, landscape, n):
    st = _starts(landscape, n)
    landscape.gradient_grid()
    w = benchmark.pedantic(toy.walk, args=(landscape, st, 1000), kwargs=dict(seed=3, record_loss=False),
                           rounds=3, iterations=1)
    benchmark.extra_info.update(walker_steps=_steps(w), threads=anodiff.get_num_threads(), iterations=1000)


@pytest.mark.parametrize("n,iters", [(1, 1000), (10_000, 100)], ids=lambda v: str(v))
def test_numpy_loop(benchmark, landscape, n, iters):
    st = _starts(landscape, n)
    w = benchmark.pedantic(toy.walk_numpy, args=(landscape, st, iters), kwargs=dict(seed=3), rounds=1,
                           iterations=1)
    benchmark.extra_info.update(walker_steps=_steps(w), iterations=iters)
