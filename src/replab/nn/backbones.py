"""Backbones shared by every image method: ``make_backbone(name, shape) -> nn.Module``.

A backbone maps images [B, C, H, W] to a pooled representation [B, out_dim] and exposes
``out_dim``. Heads (projectors, classifiers) belong to the methods and are not part of ``encode``.

- ``conv``: the foundation's 4x4 stride-2 conv stack with its dense layer (``nn.conv``), sized to
  the input (disentanglement_lib's encoder at 64x64);
- ``resnet18``: ResNet-18 (He et al.) with the CIFAR stem (3x3 conv, stride 1, no max-pool), as
  used by SimCLR for 32x32 inputs; global average pooling gives 512 features.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.nn.conv import ConvEncoder


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with the CIFAR stem; ``width`` scales the channel counts (64 for ResNet-18)."""

    def __init__(self, in_channels: int, blocks=(2, 2, 2, 2), width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        layers, in_planes = [], width
        for i, n in enumerate(blocks):
            planes = width * 2**i
            for j in range(n):
                layers.append(BasicBlock(in_planes, planes, stride=2 if (i > 0 and j == 0) else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.out_dim = in_planes

    def forward(self, x):
        return self.layers(self.stem(x)).mean(dim=(2, 3))


class ConvBackbone(nn.Module):
    """The foundation's conv encoder (ReLU features of its dense layer)."""

    def __init__(self, shape, out_dim: int = 256):
        super().__init__()
        self.net = ConvEncoder(shape, out_dim)
        self.out_dim = out_dim

    def forward(self, x):
        return self.net(x)


BACKBONES = ("conv", "resnet18")


def make_backbone(name: str, shape) -> nn.Module:
    if len(shape) != 3:
        raise ValueError(f"image backbones need [C, H, W] inputs, got shape {tuple(shape)}")
    if name == "conv":
        return ConvBackbone(shape)
    if name == "resnet18":
        return ResNet(shape[0], (2, 2, 2, 2), 64)
    raise ValueError(f"unknown backbone {name!r}; choose from: {', '.join(BACKBONES)}")
