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

from replab.methods.joint import JOINT_TRAIN_DEFAULTS, MomentumConfig, MomentumTwoView
from replab.registry import register_method


@dataclass
class BYOLConfig(MomentumConfig):
    """BYOL's settings: the two-view base's and the momentum heads' (solo-learn's widths)."""


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, z), averaged over the batch; z carries no gradient."""
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


@register_method("byol", pillar="contrastive")
class BYOL(MomentumTwoView):
    """BYOL: predict the momentum network's projection of the other view."""

    Config = BYOLConfig
    train_defaults = JOINT_TRAIN_DEFAULTS

    def loss(self, batch, step):
        (p1, p2), (z1, z2) = self.predictions_and_targets(batch, step)
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return {"loss": loss, "tau": torch.tensor(self.tau(step))}
