"""Shared fixtures: generated trajectories and run files (nothing large is committed)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("ANODIFF_NO_PROGRESS", "1")


@pytest.fixture
def rng(request):
    """A fresh seed per test run, printed on failure so a case can be replayed."""
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"seed={seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def torch_one_thread():
    """One intra-op torch thread: tiny graphs only pay synchronisation for more (shared CI host)."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_run(path, weights, chunks=None, **extra):
    """Write a minimal run file: /weights plus optional datasets and attrs."""
    import h5py

    attrs = extra.pop("attrs", {})
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=weights, chunks=chunks)
        for name, value in extra.items():
            f.create_dataset(name, data=value)
        f.attrs.update(attrs)
    return path


def run_cli(*args, env=None):
    """Run `python -m anodiff ARGS` in a subprocess; returns CompletedProcess."""
    full_env = dict(os.environ, ANODIFF_NO_PROGRESS="1")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "anodiff", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=600)
