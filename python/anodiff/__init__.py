"""anodiff: anomalous diffusion of SGD in deep networks.

Streaming time-averaged MSD over every lag, diffusion exponents and regimes,
fractal path and landscape measures, Lévy α-stable fits of gradients, Hessian
spectra and the simplified SGD model, for trajectories with millions of
weights read straight from HDF5.
"""
from __future__ import annotations

from ._config import get_num_threads, set_num_threads
from .errors import InputError
from .msd import WindowAccumulator, fit_power_law, msd, msd_windows

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "WindowAccumulator",
    "__version__",
    "fit_power_law",
    "get_num_threads",
    "msd",
    "msd_windows",
    "set_num_threads",
]

from . import hessian, landscape  # noqa: E402  (curvature and landscape)

__all__ += ["hessian", "landscape"]
