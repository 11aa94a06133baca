"""Training with every SGD step recorded: `anodiff.train` (paper §II.A).

CIFAR-style ResNets (`models`), local datasets (`data`), the HDF5 recorder
with its background writer (`recorder`) and the SGD loop (`loop`). The
run-file format is described in docs/DEVELOPING.md ("Run file").
"""
from __future__ import annotations

from .data import load_dataset
from .loop import DEFAULTS, TrainResult, epoch_permutation, train
from .models import MODEL_NAMES, build_model, count_parameters
from .recorder import RecordingError

__all__ = ["DEFAULTS", "MODEL_NAMES", "RecordingError", "TrainResult", "build_model",
           "count_parameters", "epoch_permutation", "load_dataset", "train"]
