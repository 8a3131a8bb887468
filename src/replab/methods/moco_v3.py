"""MoCo v3 (Chen, Xie and He 2021): a query predicts its own image's key among the batch's keys,
keys from a momentum network.

online: backbone f, projector g (with a final batch norm), predictor q; momentum network f', g'
(EMA, tau 0.99 -> 1 on a cosine). For views v1, v2, queries q_i = q(g(f(v_i))) and keys
k_i = sg[g'(f'(v_i))], both L2-normalised, and temperature T:

    ctr(q, k) = 2T * CE(q k_all^T / T, the index of each query's own key)
    L = ctr(q1, k2) + ctr(q2, k1)

k_all holds the keys of every process under ``torchrun`` (gathered, no gradient: they come from
the momentum network), so each query meets the global batch's keys. The momentum network is
updated at the start of each step (part of the checkpoint; resuming is exact). Defaults from
solo-learn's CIFAR recipe: projector 4096 -> 256, predictor 4096, T 0.2, LARS lr 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab import distributed as dist
from replab.config import param
from replab.methods.joint import JOINT_TRAIN_DEFAULTS, MomentumConfig, MomentumTwoView
from replab.registry import register_method


@dataclass
class MoCoV3Config(MomentumConfig):
    temperature: float = param(0.2, help="InfoNCE temperature")

    def check(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature!r}")


def moco_v3_loss(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """2T * cross-entropy of q's similarities to every process's keys, each query's own key
    (same row, this process's slice) the target. q and k: [n, d], normalised here."""
    q, k = F.normalize(q, dim=1), F.normalize(k.detach(), dim=1)
    keys = dist.gather_with_grad(k) if dist.world_size() > 1 else k
    logits = q @ keys.T / temperature
    targets = torch.arange(len(q), device=q.device) + dist.rank() * len(q)
    return 2 * temperature * F.cross_entropy(logits, targets)


@register_method("moco_v3", pillar="contrastive")
class MoCoV3(MomentumTwoView):
    """MoCo v3: InfoNCE of queries against a momentum network's keys."""

    Config = MoCoV3Config
    train_defaults = JOINT_TRAIN_DEFAULTS | {"lr": 0.3, "weight_decay": 1e-6}

    projector_final_norm = True

    def loss(self, batch, step):
        (q1, q2), (k1, k2) = self.predictions_and_targets(batch, step)
        t = self.cfg.temperature
        loss = moco_v3_loss(q1, k2, t) + moco_v3_loss(q2, k1, t)
        return {"loss": loss, "tau": torch.tensor(self.tau(step))}
