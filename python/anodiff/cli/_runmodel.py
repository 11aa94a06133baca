"""Shared by `anodiff hessian` and `anodiff landscape`: rebuild a run's model and data.

The model and checkpoints come from `anodiff.io` (`list_checkpoints`, `model_from_run`),
the data from `anodiff.train.data.load_dataset` with the run's `dataset` and `seed`
attributes, so the curvature is measured on the training distribution the run saw.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def _io():
    from .. import io  # noqa: PLC0415

    missing = [n for n in ("list_checkpoints", "model_from_run") if not hasattr(io, n)]
    if missing:
        raise InputError("this anodiff build cannot read checkpoints (anodiff.io lacks "
                         f"{', '.join(missing)}; the training recorder is not installed)")
    return io


def run_attrs(path) -> dict:
    """The run file's attributes (one-line InputError when the file is missing or unreadable)."""
    import numpy as np  # noqa: PLC0415

    from ..io import _open_h5  # noqa: PLC0415

    with _open_h5(Path(path)) as f:
        return {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v)
                for k, v in f.attrs.items()}


def checkpoints(path) -> list[int]:
    """Recorded checkpoint epochs, refusing a run that has none."""
    epochs = list(_io().list_checkpoints(path))
    if not epochs:
        raise InputError(f"{path}: run has no checkpoints (/checkpoints/epoch_N); "
                         "record one with anodiff train")
    return epochs


def parse_epochs(text: str, available: list[int], path) -> list[int]:
    """'all', 'last', a comma list '0,5,10' or a range 'a:b[:step]' (inclusive) of recorded epochs."""
    text = str(text).strip().lower()
    if text == "all":
        return list(available)
    if text == "last":
        return [available[-1]]
    wanted: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if ":" in part:
                bits = [int(b) for b in part.split(":")]
                if len(bits) not in (2, 3) or (len(bits) == 3 and bits[2] <= 0):
                    raise ValueError
                a, b = bits[0], bits[1]
                step = bits[2] if len(bits) == 3 else 1
                wanted += [e for e in available if a <= e <= b and (e - a) % step == 0]
            else:
                wanted.append(int(part))
    except ValueError:
        raise InputError(f"--epochs must be 'all', 'last', a list like 0,5,10 or a range like "
                         f"0:100:10, got {text!r}") from None
    missing = [e for e in wanted if e not in available]
    if missing:
        raise InputError(f"{path}: epoch {missing[0]} was not recorded; recorded: "
                         f"{_fmt(available)}")
    if not wanted:
        raise InputError(f"{path}: --epochs {text!r} selects no recorded epoch; recorded: "
                         f"{_fmt(available)}")
    return sorted(set(wanted))


def _fmt(epochs):
    if len(epochs) > 12:
        return ", ".join(map(str, epochs[:5])) + ", …, " + ", ".join(map(str, epochs[-3:]))
    return ", ".join(map(str, epochs))


def load_model(path, epoch: int, device: str):
    model, info = _io().model_from_run(path, epoch)
    return model.to(device), info


def loss_function(name: str):
    """The run's training loss as loss_fn(outputs, targets) -> batch mean."""
    import torch.nn.functional as F  # noqa: PLC0415

    key = str(name or "ce").strip().lower()
    # "kl" against one-hot targets is the cross-entropy (0·log 0 = 0), as anodiff train defines it
    if key in ("ce", "cross_entropy", "crossentropy", "kl"):
        return F.cross_entropy
    if key in ("mse", "l2"):
        return lambda out, y: F.mse_loss(out, y.to(out.dtype))
    raise InputError(f"run's loss {name!r} is not supported here (ce, kl or mse)")


def data_batches(attrs: dict, path, samples: int, batch_size: int, seed: int, split: str = "train"):
    """A fixed random subset of `samples` examples of the run's dataset, as (x, y) batches."""
    import torch  # noqa: PLC0415

    if "dataset" not in attrs:
        raise InputError(f"{path}: attribute 'dataset' missing, cannot load the data")
    try:
        from ..train.data import load_dataset  # noqa: PLC0415
    except ImportError:
        raise InputError("this anodiff build cannot load datasets (anodiff.train is not installed)") from None
    train, test, _ = load_dataset(str(attrs["dataset"]), seed=int(attrs.get("seed", 0)))
    ds = train if split == "train" else test
    x, y = ds.tensors[0], ds.tensors[1]
    n = len(y)
    if samples <= 0:
        raise InputError(f"--samples must be positive, got {samples}")
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(n, generator=g)[: min(samples, n)].sort().values
    x, y = x[idx], y[idx]
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def resolve_device(text: str) -> str:
    import torch  # noqa: PLC0415

    text = (text or "auto").lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda requested but no CUDA device is available")
    if not (text == "cpu" or text.startswith("cuda")):
        raise InputError(f"--device must be auto, cpu or cuda[:N], got {text!r}")
    return text


def write_json(path, obj) -> None:
    import json  # noqa: PLC0415
    import math  # noqa: PLC0415

    def clean(v):
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    try:
        Path(path).write_text(json.dumps(clean(obj), indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc})") from None


def out_dir(text) -> Path:
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise InputError(f"--out {p}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {p}: cannot create ({exc})") from None
    return p
