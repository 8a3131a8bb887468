"""What the two-view methods share (SimCLR, BYOL, MoCo v3, Barlow Twins, VICReg): two augmented
views of each image through one backbone, the backbone's output as the representation, and the
settings of the views. Each method's own file holds its heads and its loss.

Views: SimCLR's CIFAR-10 recipe (``nn.views``: crops of 8-100% of the area, flips, colour jitter
of strength 0.5 at p 0.8, grayscale 0.2, no blur), drawn as a pure function of (train seed,
step). solo-learn's recipes for these methods add solarisation and asymmetric blur, which
``nn.views`` does not have; the figures quoted from solo-learn were trained with them.

Head widths: ``0`` picks solo-learn's CIFAR widths with the ResNet-18 (the published setting)
and a quarter of them with the small conv encoder, so that a CPU trains them in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from replab import distributed as dist
from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Images
from replab.nn.backbones import make_backbone
from replab.nn.views import Views, step_generator


@dataclass
class ViewsConfig:
    """The backbone and the two views' augmentations (SimCLR's CIFAR-10 recipe)."""

    backbone: str = param(
        "auto", choices=["auto", "conv", "resnet18"], help="auto: resnet18 for 32x32 colour"
    )
    jitter_strength: float = param(0.5, min=0.0, max=2.0, help="colour jitter strength s")
    crop_min: float = param(0.08, min=0.01, max=1.0, help="smallest crop, as a share of area")
    flip_p: float = param(0.5, min=0.0, max=1.0)
    blur_p: float = param(0.0, min=0.0, max=1.0, help="Gaussian blur probability")


def pick_backbone(name: str, shape) -> str:
    """``auto``: ResNet-18 (CIFAR stem) for 32x32 colour images, the conv encoder otherwise."""
    if name != "auto":
        return name
    return "resnet18" if tuple(shape) == (3, 32, 32) else "conv"


class JointEmbedding(Method, Encoder):
    """Backbone, views and ``encode``; subclasses add heads and ``loss``."""

    accepts = Images()

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.backbone_name = pick_backbone(cfg.backbone, info.shape)
        self.backbone = make_backbone(self.backbone_name, info.shape)
        self.views = Views.simclr(
            strength=cfg.jitter_strength, blur_p=cfg.blur_p, crop_min=cfg.crop_min,
            flip_p=cfg.flip_p,
        )  # fmt: skip

    def width(self, setting: int, published: int) -> int:
        """A head width: ``setting``, or when 0 the published one (ResNet-18) or a quarter of
        it (the small conv encoder)."""
        if setting:
            return setting
        return published if self.backbone_name == "resnet18" else published // 4

    def two_views(self, batch: dict, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's two views of its slice of the batch (a function of (seed, step))."""
        generator = step_generator(self.seed, step)
        return self.views.pair(batch["x"], generator, shard=(dist.rank(), dist.world_size()))

    def encode(self, x):
        return self.backbone(x)
