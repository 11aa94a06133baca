"""anodiff: anomalous diffusion of SGD in deep networks.

Streaming time-averaged MSD over every lag, diffusion exponents and regimes,
fractal path and landscape measures, Lévy α-stable fits of gradients, Hessian
spectra and the simplified SGD model, for trajectories with millions of
weights read straight from HDF5.

Modules by science: `msd`, `analysis` (+ `geometry`), `levy`, `hessian`,
`landscape`, `toy`, `train`, `io`, `report`, `cluster` (Dask), `gpu`, `cli`.
torch is imported only by `train`, `hessian` and `landscape`, when used.
"""
from __future__ import annotations

from ._config import get_num_threads, set_num_threads
from .analysis import AnalysisResult, analyze
from .errors import InputError
from .gpu import cuda_available, cuda_unavailable_reason
from .levy import LevyFit, fit_levy_stable
from .msd import WindowAccumulator, fit_power_law, msd, msd_windows
from . import hessian, landscape, toy  # noqa: E402  (import no torch until used)

__version__ = "0.1.0"

__all__ = [
    "AnalysisResult",
    "InputError",
    "LevyFit",
    "WindowAccumulator",
    "__version__",
    "analyze",
    "cuda_available",
    "cuda_unavailable_reason",
    "fit_levy_stable",
    "fit_power_law",
    "get_num_threads",
    "hessian",
    "landscape",
    "msd",
    "msd_windows",
    "set_num_threads",
    "toy",
]
