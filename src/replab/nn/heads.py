"""What the joint-embedding methods share: projector and predictor MLPs, batch norm over the
global batch, and the momentum (EMA) target network with its cosine schedule.

``GlobalBatchNorm1d`` normalises with the statistics of the whole global batch under
``torchrun`` (gathered with gradients), so k processes compute what one process with the whole
batch computes; PyTorch's SyncBatchNorm does this on GPUs only. With one process it is
``nn.BatchNorm1d``.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from replab import distributed as dist


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the global batch (every process's
    rows), gradients included; running statistics update as one process's would."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or dist.world_size() == 1:
            return super().forward(x)
        everything = dist.gather_with_grad(x)
        mean = everything.mean(0)
        var = everything.var(0, unbiased=False)
        if self.track_running_stats:
            with torch.no_grad():
                n = everything.shape[0]
                self.num_batches_tracked += 1
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.affine else y


def mlp(sizes: list[int], last_norm: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with global batch norm and ReLU between
    them (the projectors of BYOL, MoCo v3, Barlow Twins, VICReg); ``last_norm`` adds a batch
    norm without affine parameters after the last layer (MoCo v3's projector)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(a, b, bias=last and not last_norm))  # no bias before a BN
        if not last:
            layers += [GlobalBatchNorm1d(b), nn.ReLU()]
        elif last_norm:
            layers.append(GlobalBatchNorm1d(b, affine=False))
    return nn.Sequential(*layers)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to serve as its momentum (target) network."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- tau * target + (1 - tau) * online``, parameter by parameter; buffers (batch
    norm statistics) are copied from the online network."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(tau).add_(o.detach(), alpha=1.0 - tau)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def cosine_momentum(base: float, step: int, total: int) -> float:
    """BYOL's schedule: ``1 - (1 - base) (cos(pi step / total) + 1) / 2``, from ``base`` at step
    0 to 1 at the last step."""
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def normalized(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(z, dim=1)
