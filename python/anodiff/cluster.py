"""Analysis beyond one process: dimension shards on a Dask cluster.

Every per-window quantity of the engine is a sum over dimensions, so a file's
columns can be split into shards [c0, c1) (aligned with the HDF5 chunks), each
Dask worker opens the file itself (a shared filesystem is assumed), runs the
same accumulators over its shard and returns the partial sums; the client adds
them in shard order (so the result does not depend on which worker finished
first) and finishes the fits once. A worker lost mid-analysis only loses its
task, which Dask reschedules; partial sums are added on the client only from
completed tasks, so nothing is counted twice.

Requires the optional extra: ``pip install "anodiff[dask]"``.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from .errors import InputError


def get_client(scheduler):
    """A `distributed.Client` from a Client, an address string ("tcp://host:8786") or None."""
    if scheduler is None:
        return None
    try:
        from distributed import Client  # noqa: PLC0415
    except ImportError:
        raise InputError('Dask is not installed: pip install "anodiff[dask]"') from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


def default_n_shards(client) -> int:
    """Four shards per worker thread, so a slow or lost worker delays little."""
    threads = sum(client.nthreads().values()) or 1
    return 4 * threads


def sum_partials(parts: list[Any]) -> Any:
    """Add partial results leaf by leaf: arrays and numbers are summed, dicts/tuples/lists recursed."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: sum_partials([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(sum_partials([p[i] for p in parts]) for i in range(len(first)))
    if first is None:
        return None
    total = np.array(first, dtype=np.float64 if np.asarray(first).dtype.kind == "f" else None, copy=True)
    for p in parts[1:]:
        total = total + p
    return total


def map_shards(client, fn: Callable, shards: list[tuple[int, int]], *args,
               progress: bool = False, desc: str = "shards", retries: int = 3,
               reduce: Callable[[list], Any] = sum_partials, **kwargs):
    """Run fn(*args, columns=(c0, c1), **kwargs) for every shard on the cluster.

    Returns reduce(partials in shard order): by default the leaf-by-leaf sum.
    """
    futures = client.map(lambda cols: fn(*args, columns=cols, **kwargs), shards, pure=False,
                         retries=retries, key=[f"anodiff-{desc}-{c0}-{c1}-{os.urandom(4).hex()}"
                                               for c0, c1 in shards])
    if progress and os.environ.get("ANODIFF_NO_PROGRESS") != "1":
        from distributed import as_completed  # noqa: PLC0415
        from tqdm.auto import tqdm  # noqa: PLC0415

        with tqdm(total=len(futures), desc=desc, unit="shard") as bar:
            for _ in as_completed(futures):
                bar.update(1)
    parts = client.gather(futures)
    return reduce(parts)
