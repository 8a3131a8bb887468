"""Colorization (Zhang et al. 2016): predict each pixel's quantised ab colour from its lightness.

The ab plane of CIE L*a*b* is cut into 10 x 10 cells (those an sRGB image can produce); the
network sees only the lightness and predicts a distribution over the cells at each pixel, with
the paper's soft targets and class rebalancing. The representation is the backbone's pooled
output on the lightness.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import ConfigError, param
from replab.methods.inputs import Images
from replab.methods.pretext import PretextMethod
from replab.nn.backbones import BACKBONES, make_backbone
from replab.nn.colour import rgb_to_lab
from replab.nn.conv import conv_sizes
from replab.registry import register_method

AB_BIN = 10.0  # Zhang et al.: ab space in cells of 10 x 10


@functools.lru_cache(maxsize=1)
def in_gamut_ab_bins() -> torch.Tensor:
    """Centres [Q, 2] of the 10 x 10 ab cells that some sRGB colour falls in (Q = 262).

    The ab extent of the gamut is that of the RGB cube's surface (a line of constant ab through
    the solid enters and leaves it through the surface), so a dense grid on the six faces finds
    every cell. Zhang et al. count Q = 313 from their own gamut estimate; the cells here are
    exactly those an sRGB image can produce.
    """
    n = 512
    g = torch.linspace(0.0, 1.0, n)
    u, v = (t.flatten() for t in torch.meshgrid(g, g, indexing="ij"))
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            cols = [u, v]
            cols.insert(axis, torch.full_like(u, value))
            faces.append(torch.stack(cols))
    lab = rgb_to_lab(torch.cat(faces, 1)[..., None])  # [3, points, 1]
    cells = torch.round(lab[1:, :, 0] / AB_BIN).long()  # [2, points]
    lo = int(cells.min())
    span = int(cells.max()) - lo + 1
    flat = (cells[0] - lo) * span + (cells[1] - lo)
    occupied = torch.nonzero(torch.bincount(flat, minlength=span * span)).flatten()
    centres = torch.stack([occupied // span + lo, occupied % span + lo], 1)
    return centres.float() * AB_BIN


def smooth_prior(prior: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """The bin distribution convolved with a Gaussian of ``sigma`` ab units over the bin centres
    and renormalised: p~_q = sum_r p_r exp(-|c_q - c_r|^2 / (2 sigma^2)) / Z."""
    if sigma <= 0:
        return prior / prior.sum()
    d2 = torch.cdist(centres.double(), centres.double()).pow(2)
    smoothed = torch.exp(-d2 / (2 * sigma**2)) @ prior.double()
    return (smoothed / smoothed.sum()).to(prior.dtype)


def rebalance_weights(smoothed_prior: torch.Tensor, lam: float) -> torch.Tensor:
    """Zhang et al.'s class weights: w ∝ ((1 - lam) p~ + lam / Q)^-1, scaled so that
    E_p~[w] = sum_q p~_q w_q = 1 (rare colours weigh more, the mean weight stays 1)."""
    q = len(smoothed_prior)
    w = 1.0 / ((1.0 - lam) * smoothed_prior + lam / q)
    return w / (smoothed_prior * w).sum()


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, k: int, sigma: float):
    """Zhang et al.'s soft targets: each ab value [N, 2] spread over its ``k`` nearest bins with
    Gaussian weights exp(-d^2 / (2 sigma^2)), normalised. Returns (bins [N, k], weights [N, k]),
    nearest first."""
    d2 = torch.cdist(ab, centres).pow(2)
    near_d2, bins = d2.topk(k, dim=1, largest=False)
    weights = torch.softmax(-near_d2 / (2 * sigma**2), dim=1)
    return bins, weights


class ColorHead(nn.Module):
    """Pooled features [B, dim] -> per-pixel bin logits [B, Q, h, w]: a dense layer to a small
    map, then 4x4 stride-2 transposed convolutions up to h (the shape of ``nn.conv``'s decoder)."""

    def __init__(self, in_dim: int, out_size: int, num_bins: int, width: int = 64):
        super().__init__()
        sizes = conv_sizes(out_size)
        self.start = (width, sizes[-1], sizes[-1])
        self.fc = nn.Sequential(nn.Linear(in_dim, width * sizes[-1] ** 2), nn.ReLU())
        layers, size = [], sizes[-1]
        for target in sizes[::-1][1:]:
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1, output_padding=target - 2 * size)]
            layers.append(nn.ReLU())
            size = target
        layers.append(nn.Conv2d(width, num_bins, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(self.fc(h).view(-1, *self.start))


@dataclass
class ColorizationConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    out_stride: int = param(4, min=1, help="predict colours at 1/out_stride resolution (paper: 4)")
    sigma: float = param(5.0, min=0.0, help="Gaussian of the soft targets and prior smoothing")
    neighbours: int = param(5, min=1, help="bins each soft target is spread over (paper: 5)")
    rebalance_lambda: float = param(
        0.5, min=0.0, max=1.0, help="weight of the uniform in the rebalancing mix (paper: 0.5)"
    )


@register_method("colorization", pillar="pretext")
class Colorization(PretextMethod):
    """Colorization (Zhang et al. 2016): predict each pixel's quantised ab colour from lightness.

    loss = -mean_{i,hw} v(Z_hw) sum_q Z_hwq log softmax(head(f(L_i)))_hwq, Z the soft-encoded
    ab targets (at 1/out_stride resolution) and v(Z) = w_{argmax Z} the rebalancing weight of
    the nearest bin. The prior p behind w is the bin frequency of every training target seen so
    far (a buffer, saved with the model): the paper uses its training set's, which a stream of
    batches estimates without a pass over the data first. ``encode`` sees the lightness only,
    (L - 50) / 100, as the network does.
    """

    Config = ColorizationConfig
    accepts = Images(square=True, channels=(3,))
    # Zhang et al.: Adam, beta1 0.9, beta2 0.99, weight decay 1e-3, lr 3e-5, batch 40.
    train_defaults = {
        "optimizer": "adam",
        "lr": 3e-5,
        "betas": [0.9, 0.99],
        "weight_decay": 1e-3,
        "batch_size": 40,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        size = self.shape[1]
        centres = in_gamut_ab_bins()
        if cfg.neighbours > len(centres):
            raise ConfigError(f"model.neighbours: must be <= {len(centres)}")
        self.register_buffer("bin_centres", centres.clone(), persistent=False)
        # float32, not 64: MPS has no float64; the prior needs no more precision than that
        self.register_buffer("bin_counts", torch.zeros(len(centres)))
        self.out_size = max(1, size // cfg.out_stride)
        self.backbone = make_backbone(cfg.backbone, (1, size, size))
        self.head = ColorHead(self.backbone.out_dim, self.out_size, len(centres))

    @staticmethod
    def lightness_input(lab: torch.Tensor) -> torch.Tensor:
        return (lab[:, :1] - 50.0) / 100.0

    def encode(self, x):
        return self.backbone(self.lightness_input(rgb_to_lab(x)))

    def class_weights(self) -> torch.Tensor:
        counts = self.bin_counts
        if counts.sum() == 0:
            return torch.ones_like(counts, dtype=torch.float32)
        smoothed = smooth_prior(counts / counts.sum(), self.bin_centres, self.cfg.sigma)
        return rebalance_weights(smoothed, self.cfg.rebalance_lambda).float()

    def loss(self, batch, step):
        lab = rgb_to_lab(batch["x"])
        with torch.autocast(lab.device.type, enabled=False):
            ab = F.adaptive_avg_pool2d(lab[:, 1:], self.out_size)  # [B, 2, h, w]
            ab = ab.permute(0, 2, 3, 1).reshape(-1, 2)
            sigma = max(self.cfg.sigma, 1e-3)  # sigma 0: all weight on the nearest bin
            bins, soft = soft_encode(ab, self.bin_centres, self.cfg.neighbours, sigma)
        if self.training:
            with torch.no_grad():
                self.bin_counts += torch.bincount(bins[:, 0], minlength=len(self.bin_counts))
        logits = self.head(self.backbone(self.lightness_input(lab)))
        logp = F.log_softmax(logits.float(), 1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        ce = -(soft * logp.gather(1, bins)).sum(1)
        v = self.class_weights()[bins[:, 0]]
        return {
            "loss": (v * ce).mean(),
            "cross_entropy": ce.mean(),
            "accuracy": (logp.argmax(1) == bins[:, 0]).float().mean(),
        }
