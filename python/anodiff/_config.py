"""Process-wide settings shared by the compiled kernels."""
from __future__ import annotations

import os

_num_threads: int | None = None


def get_num_threads() -> int:
    """Threads the CPU kernels use: set_num_threads(), else $ANODIFF_NUM_THREADS, else all cores."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("ANODIFF_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"ANODIFF_NUM_THREADS must be a positive integer, got {env!r}") from None
        if value > 0:
            return value
    return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Set the number of threads of the CPU kernels (None restores the default)."""
    global _num_threads
    if n is not None and int(n) < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    _num_threads = None if n is None else int(n)
