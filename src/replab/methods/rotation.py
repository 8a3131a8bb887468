"""RotNet (Gidaris et al. 2018): which of 0/90/180/270 degrees was an image turned by?

Every image of the batch is shown in all four rotations, as in the paper; the representation is
the backbone's pooled output on the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab import distributed as dist
from replab.config import param
from replab.methods.pretext import PretextMethod, accuracy, mlp_head
from replab.nn.backbones import BACKBONES, make_backbone
from replab.nn.views import Views, step_generator
from replab.registry import register_method


def rotate90(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` turned counter-clockwise by ``k`` quarter turns on screen (rows down, columns right),
    the same as ``torch.rot90(x, k, dims=(-2, -1))``."""
    k %= 4
    if k == 1:
        return x.transpose(-2, -1).flip(-2)
    if k == 2:
        return x.flip(-2).flip(-1)
    if k == 3:
        return x.transpose(-2, -1).flip(-1)
    return x


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, as the paper trains: ([4B, C, S, S], labels [4B]),
    label k meaning ``k`` counter-clockwise quarter turns (0, 90, 180, 270 degrees)."""
    turned = torch.cat([rotate90(x, k) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return turned, labels


@dataclass
class RotationConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    head_hidden: int = param(256, min=0, help="hidden units of the rotation classifier (0: linear)")
    crop_min: float = param(
        1.0, min=0.01, max=1.0, help="smallest random-resized-crop area before rotating (1: none)"
    )
    flip_p: float = param(0.0, min=0.0, max=1.0, help="chance of a horizontal flip before rotating")


@register_method("rotation", pillar="pretext")
class Rotation(PretextMethod):
    """RotNet (Gidaris et al. 2018): predict the rotation (0/90/180/270 degrees) of an image.

    loss = -1/(4B) sum_i sum_k log softmax(head(f(rot_k(x_i))))_k over the 4 rotations of each
    of the B images.

    Optionally each image is first cropped (random resized crop, area in [crop_min, 1]) and
    flipped; RotNet's own code trains on crops and flips too (padded 32-px crops on CIFAR,
    random-sized crops on ImageNet). The rotation label is that of the augmented image. Off by
    default. Why it is there: on small, tightly framed images (8x8 digits) the bare task is
    solved early, and a solved task stops shaping the features; crops and flips keep it hard
    (the README's "what to expect" gives the measured effect).
    """

    Config = RotationConfig
    # Gidaris et al. (CIFAR-10): SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.1 (the
    # paper drops it in steps; replab decays it with its cosine schedule). Batch counts images;
    # the network sees 4x as many inputs.
    train_defaults = {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 128,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.backbone = make_backbone(cfg.backbone, self.shape)
        self.head = mlp_head(self.backbone.out_dim, cfg.head_hidden, 4)
        self.views = None  # crop and flip only: the colour of the image is not the task's business
        if cfg.crop_min < 1.0 or cfg.flip_p > 0.0:
            self.views = Views(
                crop_scale=(cfg.crop_min, 1.0), flip_p=cfg.flip_p, jitter_p=0.0, gray_p=0.0
            )

    def loss(self, batch, step):
        x = batch["x"]
        if self.views is not None:  # a pure function of (seed, step), as SimCLR's views
            shard = (dist.rank(), dist.world_size())
            x = self.views(x, step_generator(self.seed, step), shard=shard)
        x, labels = rotation_batch(x)
        logits = self.head(self.backbone(x))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy(logits, labels)}
