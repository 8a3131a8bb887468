"""VICReg (Bardes, Ponce and LeCun 2022): variance, invariance, covariance regularisation.

backbone f, projector g; z = g(f(v1)), z' = g(f(v2)), [N, D] over the global batch:

    invariance   s(z, z') = mean_i ||z_i - z'_i||^2 / D           (the MSE)
    variance     v(z) = mean_j max(0, 1 - sqrt(Var(z_j) + 1e-4))    (unbiased variance)
    covariance   c(z) = sum_{i != j} Cov(z)_ij^2 / D
    L = 25 s(z, z') + 25 (v(z) + v(z')) + 1 (c(z) + c(z'))

Under ``torchrun`` every term is computed on the embeddings of every process, gathered with
gradients (as the paper's FullGatherLayer), so k processes compute what one computes. Defaults
from solo-learn's CIFAR recipe: projector 2048-2048-2048, LARS lr 0.3, weight decay 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab import distributed as dist
from replab.config import param
from replab.methods.joint import JOINT_TRAIN_DEFAULTS, JointEmbedding, ViewsConfig
from replab.registry import register_method


@dataclass
class VICRegConfig(ViewsConfig):
    projection_hidden: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    projection_dim: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    invariance_weight: float = param(25.0, min=0.0)
    variance_weight: float = param(25.0, min=0.0)
    covariance_weight: float = param(1.0, min=0.0)


def variance_term(z: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    z = z - z.mean(0)
    cov = z.T @ z / (len(z) - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / z.shape[1]


def vicreg_loss(z1, z2, weights=(25.0, 25.0, 1.0)) -> tuple[torch.Tensor, dict]:
    """The weighted sum of the three terms on the global batch; (loss, the terms)."""
    if dist.world_size() > 1:
        z1, z2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)
    terms = {
        "invariance": F.mse_loss(z1, z2),
        "variance": variance_term(z1) + variance_term(z2),
        "covariance": covariance_term(z1) + covariance_term(z2),
    }
    loss = sum(w * t for w, t in zip(weights, terms.values(), strict=True))
    return loss, {k: v.detach() for k, v in terms.items()}


@register_method("vicreg", pillar="contrastive")
class VICReg(JointEmbedding):
    """VICReg: invariance between views, variance and decorrelation within each."""

    Config = VICRegConfig
    train_defaults = JOINT_TRAIN_DEFAULTS | {"lr": 0.3, "weight_decay": 1e-4}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.projector = self.wide_projector(cfg.projection_hidden, cfg.projection_dim)

    def loss(self, batch, step):
        z1, z2 = self.projected_views(batch, step)
        c = self.cfg
        weights = (c.invariance_weight, c.variance_weight, c.covariance_weight)
        loss, terms = vicreg_loss(z1, z2, weights)
        return {"loss": loss, **terms}
