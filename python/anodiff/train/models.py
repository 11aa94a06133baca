"""CIFAR-style residual networks of depth 6n+2 and their shortcut-free twins.

`resnet{6n+2}` follows He et al. (2016, §4.2): a 3×3 convolution to 16
channels, three stages of n basic blocks with 16, 32 and 64 channels (the
second and third stages start with stride 2), global average pooling and a
linear classifier. Shortcuts are the parameter-free "option A" identity
(spatial subsampling plus zero-padded channels), so the parameter counts are
the published ones: resnet20 0.27 M, resnet110 1.7 M on CIFAR-10.

`<name>_noshort` is the same network with the shortcut connections removed
(the "VGG-like" networks of the paper): same parameters, same layout, same
initial weights for the same seed. Initialisation is PyTorch's default.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

#: depth -> blocks per stage n (depth = 6n + 2)
_DEPTHS = {8: 1, 14: 2, 20: 3, 32: 5, 44: 7, 56: 9, 110: 18}

#: every name `build_model` accepts
MODEL_NAMES = [f"resnet{d}" for d in _DEPTHS] + [f"resnet{d}_noshort" for d in _DEPTHS]


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN (+ identity shortcut) -ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut
        self.stride = stride
        self.pad = planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            sc = x[:, :, ::self.stride, ::self.stride] if self.stride != 1 else x
            if self.pad:
                sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            out = out + sc
        return F.relu(out)


class CifarResNet(nn.Module):
    """ResNet of depth 6n+2 for small images (any H, W ≥ 1; global average pooling)."""

    def __init__(self, n: int, in_channels: int = 3, num_classes: int = 10, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, shortcut))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def build_model(name: str, in_channels: int, num_classes: int) -> nn.Module:
    """The network `name` (one of MODEL_NAMES) for `in_channels` inputs and `num_classes` outputs.

    Weights come from PyTorch's default initialisation, i.e. from the global
    torch RNG: call `torch.manual_seed` first for a reproducible model.
    """
    key = str(name).strip().lower()
    shortcut = not key.endswith("_noshort")
    base = key[: -len("_noshort")] if not shortcut else key
    depth = base[len("resnet"):] if base.startswith("resnet") else ""
    if not depth.isdigit() or int(depth) not in _DEPTHS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if int(in_channels) < 1 or int(num_classes) < 2:
        raise InputError(f"model needs in_channels >= 1 and num_classes >= 2, got "
                         f"{in_channels} and {num_classes}")
    return CifarResNet(_DEPTHS[int(depth)], int(in_channels), int(num_classes), shortcut)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (the dimension d of the weight trajectory)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
