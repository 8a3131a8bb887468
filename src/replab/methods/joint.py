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
from replab.nn.heads import cosine_momentum, ema_update, mlp, momentum_copy
from replab.nn.views import Views, step_generator

# solo-learn's CIFAR recipe for the joint-embedding methods; each sets its own lr and decay.
JOINT_TRAIN_DEFAULTS = {
    "optimizer": "lars",
    "lr": 1.0,
    "weight_decay": 1e-5,
    "momentum": 0.9,
    "batch_size": 256,
    "schedule": "cosine",
    "warmup_steps": 30,  # 1% of the default 3,000 steps (solo-learn: 10 of 1,000 epochs)
    "grad_clip": 0.0,
    "monitor_every": 100,  # kNN accuracy, collapse and rank of the codes (training.monitors)
}


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

    def wide_projector(self, hidden: int, out: int, published: int = 2048) -> torch.nn.Module:
        """Barlow Twins' and VICReg's projector: backbone -> hidden -> hidden -> out, each
        width 0 meaning ``published`` (ResNet-18) or a quarter of it (conv)."""
        h = self.width(hidden, published)
        return mlp([self.backbone.out_dim, h, h, self.width(out, published)])

    def two_views(self, batch: dict, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's two views of its slice of the batch (a function of (seed, step))."""
        generator = step_generator(self.seed, step)
        return self.views.pair(batch["x"], generator, shard=(dist.rank(), dist.world_size()))

    def projected_views(self, batch: dict, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The projector's embeddings of the two views, in one pass through the networks."""
        return self.projector(self.backbone(torch.cat(self.two_views(batch, step)))).chunk(2)

    def encode(self, x):
        return self.backbone(x)


@dataclass
class MomentumConfig(ViewsConfig):
    """The heads and momentum of BYOL and MoCo v3 (solo-learn's CIFAR widths)."""

    projection_hidden: int = param(0, min=0, help="0: 4096 (resnet18), 1024 (conv)")
    projection_dim: int = param(256, min=1)
    prediction_hidden: int = param(0, min=0, help="0: 4096 (resnet18), 1024 (conv)")
    base_tau: float = param(0.99, min=0.0, max=1.0, help="target momentum at step 0 (-> 1)")


class MomentumTwoView(JointEmbedding):
    """An online network (backbone, projector, predictor) and a target network (backbone and
    projector), the target an EMA of the online one with tau rising from ``base_tau`` to 1 on a
    cosine (BYOL's schedule). The target is updated as each step begins, from the weights the
    previous step left: it is part of the model, so checkpoints hold it and resuming is exact."""

    projector_final_norm: bool = False  # MoCo v3 ends its projector with a batch norm

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        hidden = self.width(cfg.projection_hidden, 4096)
        self.projector = mlp([self.backbone.out_dim, hidden, cfg.projection_dim],
                             last_norm=self.projector_final_norm)  # fmt: skip
        self.predictor = mlp(
            [cfg.projection_dim, self.width(cfg.prediction_hidden, 4096), cfg.projection_dim]
        )
        self.target_backbone = momentum_copy(self.backbone)
        self.target_projector = momentum_copy(self.projector)

    def tau(self, step: int) -> float:
        return cosine_momentum(self.cfg.base_tau, step, self.total_steps)

    def predictions_and_targets(self, batch, step):
        """((p1, p2), (z1, z2)): the online predictions and the target projections of the two
        views, after the target's update for this step; the targets carry no gradient."""
        if step > 0 and self.training:
            tau = self.tau(step)
            ema_update(self.target_backbone, self.backbone, tau)
            ema_update(self.target_projector, self.projector, tau)
        views = torch.cat(self.two_views(batch, step))
        predictions = self.predictor(self.projector(self.backbone(views))).chunk(2)
        with torch.no_grad():
            targets = self.target_projector(self.target_backbone(views)).chunk(2)
        return predictions, targets
