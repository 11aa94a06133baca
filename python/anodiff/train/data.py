"""Datasets for `anodiff train`, read from local files only (no downloads).

Spec strings:

* ``digits`` — scikit-learn's bundled 8×8 handwritten digits (1797 images,
  10 classes), a stratified train/test split of 1437/360 chosen by `seed`.
* ``mnist:DIR`` — the standard IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, gzipped or not; also looked for in DIR/raw and
  DIR/MNIST/raw).
* ``cifar10:DIR`` — the standard python-pickle batches ``data_batch_1`` …
  ``data_batch_5`` and ``test_batch`` (in DIR or DIR/cifar-10-batches-py).
* ``synthetic[:key=value,…]`` — Gaussian images labelled by a random linear
  teacher, for tests and benchmarks: keys ``n`` (train size, 512), ``test``
  (128), ``shape`` (``CxHxW``, ``1x8x8``), ``classes`` (10).

Inputs are float32 NCHW tensors scaled to [0, 1] and standardised per channel
with the training set's mean and standard deviation; targets are int64.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..errors import InputError

DATASET_KINDS = ("digits", "mnist:DIR", "cifar10:DIR", "synthetic")


def load_dataset(spec: str, seed: int = 0):
    """Load the dataset named by `spec` -> (train_set, test_set, info).

    train_set, test_set : TensorDataset of (float32 NCHW inputs, int64 targets)
    info : dict with name, spec, in_channels, num_classes, image_shape, n_train,
        n_test, mean, std (the per-channel standardisation applied).
    """
    spec = str(spec).strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "digits":
        if arg:
            raise InputError(f"dataset 'digits' takes no argument, got {spec!r}")
        xtr, ytr, xte, yte = _digits(seed)
        num_classes = 10
    elif kind == "mnist":
        xtr, ytr, xte, yte = _mnist(_need_dir(spec, arg))
        num_classes = 10
    elif kind == "cifar10":
        xtr, ytr, xte, yte = _cifar10(_need_dir(spec, arg))
        num_classes = 10
    elif kind == "synthetic":
        xtr, ytr, xte, yte, num_classes = _synthetic(arg, seed)
    else:
        raise InputError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASET_KINDS)}")
    mean = xtr.mean(axis=(0, 2, 3), dtype=np.float64)
    std = xtr.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    shape = (1, -1, 1, 1)
    xtr = ((xtr - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)
    xte = ((xte - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)
    info = {
        "name": kind, "spec": spec, "in_channels": int(xtr.shape[1]), "num_classes": int(num_classes),
        "image_shape": tuple(int(v) for v in xtr.shape[1:]), "n_train": int(len(xtr)),
        "n_test": int(len(xte)), "mean": mean.tolist(), "std": std.tolist(),
    }
    train = TensorDataset(torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr.astype(np.int64)))
    test = TensorDataset(torch.from_numpy(np.ascontiguousarray(xte)), torch.from_numpy(yte.astype(np.int64)))
    return train, test, info


def _need_dir(spec: str, arg: str) -> Path:
    if not arg:
        raise InputError(f"dataset {spec!r} needs a directory, e.g. {spec.split(':')[0]}:/data/dir")
    path = Path(arg).expanduser()
    if not path.is_dir():
        raise InputError(f"dataset {spec!r}: {path} is not a directory")
    return path


# -- digits ------------------------------------------------------------------
def _digits(seed: int):
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=360, random_state=int(seed), stratify=y)
    return xtr, ytr, xte, yte


# -- MNIST (IDX) -------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array of its declared shape."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(f"{path}: IDX header declares shape {dims} ({expected} bytes) but the file "
                         f"holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(root: Path, stem: str, kind: str) -> Path:
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for name in names:
            for cand in (folder / name, folder / (name + ".gz")):
                if cand.is_file():
                    return cand
    raise InputError(f"mnist:{root}: missing {names[0]}[.gz]")


def _mnist(root: Path):
    out = []
    for split in ("train", "t10k"):
        xp, yp = _find_idx(root, f"{split}-images", "idx3"), _find_idx(root, f"{split}-labels", "idx1")
        x, y = read_idx(xp), read_idx(yp)
        if x.ndim != 3:
            raise InputError(f"{xp}: expected images of shape (n, rows, cols), got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise InputError(f"{yp}: expected {len(x)} labels, got shape {y.shape}")
        if len(x) == 0:
            raise InputError(f"{xp}: no images")
        if y.min() < 0 or y.max() > 9:
            raise InputError(f"{yp}: labels must be 0…9, found {int(y.min())}…{int(y.max())}")
        out += [x.astype(np.float64)[:, None] / 255.0, y.astype(np.int64)]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise InputError(f"mnist:{root}: train images {out[0].shape[2:]} and test images "
                         f"{out[2].shape[2:]} differ in size")
    return out[0], out[1], out[2], out[3]


# -- CIFAR-10 (pickle batches) -----------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (no arbitrary code)."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path: Path):
    if not path.is_file():
        raise InputError(f"cifar10: missing batch file {path}")
    try:
        with path.open("rb") as fh:
            d = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a malformed file
        raise InputError(f"{path}: not a CIFAR-10 pickle batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: not a CIFAR-10 pickle batch (expected a dict)")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise InputError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'")
    x = np.asarray(d["data"])
    y = np.asarray(d["labels"], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8:
        raise InputError(f"{path}: 'data' must be uint8 of shape (n, 3072), got {x.dtype} {x.shape}")
    if y.shape != (len(x),):
        raise InputError(f"{path}: {len(x)} images but {y.size} labels")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise InputError(f"{path}: labels must be 0…9")
    return x.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0, y


def _cifar10(root: Path):
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    parts = [_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = _cifar_batch(root / "test_batch")
    if len(xtr) == 0 or len(xte) == 0:
        raise InputError(f"cifar10:{root}: empty training or test set")
    return xtr, ytr, xte, yte


# -- synthetic ---------------------------------------------------------------
def _synthetic(arg: str, seed: int):
    opts = {"n": "512", "test": "128", "shape": "1x8x8", "classes": "10"}
    for item in filter(None, (s.strip() for s in arg.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in opts:
            raise InputError(f"synthetic dataset: bad option {item!r}; keys are {', '.join(opts)}")
        opts[key] = value
    try:
        n, n_test, classes = int(opts["n"]), int(opts["test"]), int(opts["classes"])
        shape = tuple(int(v) for v in opts["shape"].lower().split("x"))
    except ValueError:
        raise InputError(f"synthetic dataset: options must be integers (shape as CxHxW), got {arg!r}") from None
    if n < 1 or n_test < 1 or classes < 2 or len(shape) != 3 or min(shape) < 1:
        raise InputError(f"synthetic dataset: need n>=1, test>=1, classes>=2, shape CxHxW, got {arg!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    x = rng.random((n + n_test, *shape))
    teacher = rng.standard_normal((int(np.prod(shape)), classes))
    y = np.argmax((x.reshape(len(x), -1) - 0.5) @ teacher, axis=1).astype(np.int64)
    return x[:n], y[:n], x[n:], y[n:], classes
