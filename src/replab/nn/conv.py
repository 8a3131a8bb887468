"""Conv and MLP encoders/decoders that adapt to the input size.

For 64x64 inputs the conv pair is exactly disentanglement_lib's: four 4x4 stride-2 convolutions
with 32, 32, 64, 64 channels, a 256-unit dense layer, and the mirror image in the decoder. Other
sizes use the same pattern with as many stride-2 layers as it takes to reach 4x4 or smaller
(8x8: 1, 28x28: 3, 32x32: 3), and the decoder retraces the encoder's exact sizes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DSPRITES_CHANNELS = (32, 32, 64, 64)


def conv_sizes(size: int, max_layers: int = 4) -> list[int]:
    """Spatial sizes through 4x4 stride-2 padding-1 convolutions down to <= 4."""
    sizes = [size]
    while sizes[-1] > 4 and len(sizes) <= max_layers:
        sizes.append(sizes[-1] // 2)
    return sizes


class ConvEncoder(nn.Module):
    """x [B, C, H, W] -> features [B, out_dim] (ReLU conv stack + dense layer)."""

    def __init__(self, in_shape, out_dim: int = 256, channels=DSPRITES_CHANNELS):
        super().__init__()
        c, h, w = in_shape
        if h != w:
            raise ValueError(f"conv encoder expects square images, got {h}x{w}")
        self.sizes = conv_sizes(h, len(channels))
        layers, prev = [], c
        for ch in channels[: len(self.sizes) - 1]:
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.ReLU()]
            prev = ch
        self.conv = nn.Sequential(*layers)
        self.feature_shape = (prev, self.sizes[-1], self.sizes[-1])
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(self.feature_shape), out_dim))
        self.out_dim = out_dim

    def forward(self, x):
        return torch.relu(self.fc(self.conv(x)))


class ConvDecoder(nn.Module):
    """z [B, latent] -> logits [B, C, H, W], the encoder's mirror image."""

    def __init__(self, latent_dim: int, encoder: ConvEncoder, out_channels: int, hidden: int = 256):
        super().__init__()
        self.feature_shape = encoder.feature_shape
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.feature_shape)),
            nn.ReLU(),
        )
        chans = [m.out_channels for m in encoder.conv if isinstance(m, nn.Conv2d)]
        targets = encoder.sizes[::-1][1:]  # sizes to reach, smallest first
        outs = chans[::-1][1:] + [out_channels]
        layers, prev, size = [], chans[-1], encoder.sizes[-1]
        for i, (ch, target) in enumerate(zip(outs, targets, strict=True)):
            pad = target - 2 * size  # 0 or 1: hits odd sizes like 7 exactly
            layers.append(nn.ConvTranspose2d(prev, ch, 4, 2, 1, output_padding=pad))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
            prev, size = ch, target
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, *self.feature_shape))


class MLPEncoder(nn.Module):
    """Flattened x -> features; disentanglement_lib's fc encoder uses (1200, 1200)."""

    def __init__(self, in_shape, hidden=(1200, 1200)):
        super().__init__()
        layers, prev = [nn.Flatten()], math.prod(in_shape)
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        self.net = nn.Sequential(*layers)
        self.out_dim = prev

    def forward(self, x):
        return self.net(x)


class MLPDecoder(nn.Module):
    """z -> logits of the flattened input, reshaped."""

    def __init__(self, latent_dim: int, out_shape, hidden=(1200, 1200)):
        super().__init__()
        layers, prev = [], latent_dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.Tanh()]
            prev = h
        layers.append(nn.Linear(prev, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, z):
        return self.net(z).view(-1, *self.out_shape)


def pick_architecture(kind: str, shape) -> str:
    """``auto`` is the conv pair from 16x16 up (it needs at least one stride-2 layer of room)
    and the MLP pair below; ``conv`` and ``mlp`` are taken as given."""
    if kind == "auto":
        return "conv" if min(shape[1:]) >= 16 else "mlp"
    return kind


def architecture_problem(kind: str, shape) -> str | None:
    """Why the ``kind`` pair cannot be built for images of ``shape``, or None: the conv pair
    needs square images (the MLP pair takes any)."""
    if pick_architecture(kind, shape) == "conv" and shape[1] != shape[2]:
        return (
            f"needs square images for its conv encoder, got {shape[1]}x{shape[2]}; "
            "set model.architecture=mlp"
        )
    return None


def make_encoder_decoder(kind: str, shape, latent_dim: int, mlp_hidden=(1200, 1200)):
    """('auto'|'conv'|'mlp', input shape) -> (encoder, decoder); see ``pick_architecture``."""
    if len(shape) != 3:
        raise ValueError(f"image methods need [C, H, W] inputs, got shape {tuple(shape)}")
    kind = pick_architecture(kind, shape)
    if kind == "conv":
        enc = ConvEncoder(shape)
        return enc, ConvDecoder(latent_dim, enc, shape[0])
    enc = MLPEncoder(shape, mlp_hidden)
    return enc, MLPDecoder(latent_dim, shape, mlp_hidden)
