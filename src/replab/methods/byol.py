"""BYOL (Grill et al. 2020): an online network predicts a slowly moving target network's
projection of another view of the same image; no negatives.

online: backbone f, projector g, predictor q; target: f', g', an exponential moving average of
f and g with tau rising from 0.99 to 1 on a cosine over the run (``nn.heads``). For views v1, v2:

    L = (2 - 2 cos(q(g(f(v1))), sg[g'(f'(v2))])) + (2 - 2 cos(q(g(f(v2))), sg[g'(f'(v1))]))

averaged over the batch. The target is updated at the start of each step from the online
weights the previous step left, so it is part of the checkpoint and resuming is exact. Defaults
from solo-learn's CIFAR recipe: projector 4096 -> 256, predictor 4096, LARS lr 1.0, weight decay
1e-5, batch 256, warm-up then cosine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab.config import param
from replab.methods.joint import JointEmbedding, ViewsConfig
from replab.nn.heads import cosine_momentum, ema_update, mlp, momentum_copy
from replab.registry import register_method

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
class BYOLConfig(ViewsConfig):
    projection_hidden: int = param(0, min=0, help="0: 4096 (resnet18), 1024 (conv)")
    projection_dim: int = param(256, min=1)
    prediction_hidden: int = param(0, min=0, help="0: 4096 (resnet18), 1024 (conv)")
    base_tau: float = param(0.99, min=0.0, max=1.0, help="target momentum at step 0 (-> 1)")


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, z), averaged over the batch; z carries no gradient."""
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


@register_method("byol", pillar="contrastive")
class BYOL(JointEmbedding):
    """BYOL: predict the momentum network's projection of the other view."""

    Config = BYOLConfig
    train_defaults = JOINT_TRAIN_DEFAULTS

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        width = self.backbone.out_dim
        hidden = self.width(cfg.projection_hidden, 4096)
        self.projector = mlp([width, hidden, cfg.projection_dim])
        self.predictor = mlp(
            [cfg.projection_dim, self.width(cfg.prediction_hidden, 4096), cfg.projection_dim]
        )
        self.target_backbone = momentum_copy(self.backbone)
        self.target_projector = momentum_copy(self.projector)

    def tau(self, step: int) -> float:
        return cosine_momentum(self.cfg.base_tau, step, self.total_steps)

    def loss(self, batch, step):
        if step > 0 and self.training:  # the previous step's update, now in the target
            tau = self.tau(step)
            ema_update(self.target_backbone, self.backbone, tau)
            ema_update(self.target_projector, self.projector, tau)
        v1, v2 = self.two_views(batch, step)
        views = torch.cat([v1, v2])
        p1, p2 = self.predictor(self.projector(self.backbone(views))).chunk(2)
        with torch.no_grad():
            z1, z2 = self.target_projector(self.target_backbone(views)).chunk(2)
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return {"loss": loss, "tau": torch.tensor(self.tau(step))}
