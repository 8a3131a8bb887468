"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views' embeddings should be
the identity: invariant, and redundancy-free.

backbone f, projector g; z_a = g(f(v1)), z_b = g(f(v2)), each standardised per dimension over
the global batch (mean 0, std 1; batch norm without parameters), C = z_a^T z_b / N [D, D]:

    L = scale * ( sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2 )

with lambda 5.1e-3 and scale 0.1 (solo-learn's CIFAR setting; the paper's lambda is 5e-3).
Under ``torchrun`` the embeddings of every process are gathered with gradients, so C is the
global batch's and k processes compute what one computes. Defaults: projector 2048-2048-2048,
LARS lr 0.3, weight decay 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from replab import distributed as dist
from replab.config import param
from replab.methods.joint import JOINT_TRAIN_DEFAULTS, JointEmbedding, ViewsConfig
from replab.registry import register_method


@dataclass
class BarlowTwinsConfig(ViewsConfig):
    projection_hidden: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    projection_dim: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    lamb: float = param(0.0051, min=0.0, help="weight of the off-diagonal terms")
    scale: float = param(0.1, min=0.0, help="the loss's overall scale (solo-learn's 0.1)")


def standardized(z: torch.Tensor) -> torch.Tensor:
    """Each column to mean 0 and (biased) standard deviation 1 over the rows."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)


def barlow_twins_loss(za: torch.Tensor, zb: torch.Tensor, lamb: float, scale: float):
    """scale * (sum_i (1 - C_ii)^2 + lamb * sum_{i != j} C_ij^2), C the cross-correlation of
    the standardised embeddings of the global batch. Returns (loss, C)."""
    if dist.world_size() > 1:
        za, zb = dist.gather_with_grad(za), dist.gather_with_grad(zb)
    c = standardized(za).T @ standardized(zb) / len(za)
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return scale * (on + lamb * off), c


@register_method("barlow_twins", pillar="contrastive")
class BarlowTwins(JointEmbedding):
    """Barlow Twins: the views' cross-correlation driven to the identity."""

    Config = BarlowTwinsConfig
    train_defaults = JOINT_TRAIN_DEFAULTS | {"lr": 0.3, "weight_decay": 1e-4}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.projector = self.wide_projector(cfg.projection_hidden, cfg.projection_dim)

    def loss(self, batch, step):
        za, zb = self.projected_views(batch, step)
        loss, c = barlow_twins_loss(za, zb, self.cfg.lamb, self.cfg.scale)
        return {"loss": loss, "diagonal": torch.diagonal(c).mean().detach()}
