"""DINO (Caron et al. 2021): self-distillation without labels. A student matches the sharpened,
centred output distribution of a momentum teacher on another view of the same image.

student: backbone f, head h (MLP -> 256-d bottleneck -> L2 norm -> K weight-normalised
prototypes); teacher: f', h', their exponential moving average (tau 0.9995 -> 1, cosine). For
views v1, v2, with student temperature T_s, teacher temperature T_t and centre c:

    P_t(v) = softmax((h'(f'(v)) - c) / T_t)        P_s(v) = softmax(h(f(v)) / T_s)
    L = mean over the batch of [ H(P_t(v1), P_s(v2)) + H(P_t(v2), P_s(v1)) ] / 2

H(a, b) = -sum_k a_k log b_k, the teacher's side without gradient. After each step the centre
moves towards the teacher's mean output over the global batch, c <- m c + (1 - m) mean, m 0.9
(all-reduced under ``torchrun``); centring and sharpening (T_t < T_s) together keep the outputs
from collapsing. T_t rises linearly from 0.04 to 0.07 over the first ``teacher_temp_warmup`` of
the run, then stays. The centre is a buffer and the teacher part of the model: resuming is exact.
Multi-crop (DINO's extra small crops) is not here: two global views, as in solo-learn's CIFAR
baseline without it. Defaults: 4096 prototypes, head 2048 wide (ResNet-18; a quarter of each
with the small conv encoder), LARS lr 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab import distributed as dist
from replab.config import param
from replab.methods.byol import JOINT_TRAIN_DEFAULTS
from replab.methods.joint import JointEmbedding, ViewsConfig
from replab.nn.heads import cosine_momentum, ema_update, momentum_copy
from replab.registry import register_method


@dataclass
class DINOConfig(ViewsConfig):
    head_hidden: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    bottleneck: int = param(256, min=1)
    prototypes: int = param(0, min=0, help="K, the output size; 0: 4096 (resnet18), 1024 (conv)")
    student_temp: float = param(0.1, help="T_s")
    teacher_temp: float = param(0.07, help="T_t after its warm-up")
    teacher_temp_start: float = param(0.04, help="T_t at step 0")
    teacher_temp_warmup: float = param(0.05, min=0.0, max=1.0, help="share of the run")
    center_momentum: float = param(0.9, min=0.0, max=1.0)
    base_tau: float = param(0.9995, min=0.0, max=1.0, help="teacher momentum at step 0 (-> 1)")

    def check(self) -> None:
        for name in ("student_temp", "teacher_temp", "teacher_temp_start"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")


class DINOHead(nn.Module):
    """MLP (GELU) to a bottleneck, L2-normalised, then K prototypes of unit norm (the
    weight-normalised last layer with its gain fixed at 1)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, prototypes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )  # fmt: skip
        self.prototypes = nn.Parameter(torch.randn(prototypes, bottleneck) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=1)
        return z @ F.normalize(self.prototypes, dim=1).T


def teacher_temperature(cfg: DINOConfig, step: int, total: int) -> float:
    """Linear from ``teacher_temp_start`` to ``teacher_temp`` over the warm-up share, then flat."""
    warmup = cfg.teacher_temp_warmup * total
    if warmup <= 0 or step >= warmup:
        return cfg.teacher_temp
    return cfg.teacher_temp_start + (cfg.teacher_temp - cfg.teacher_temp_start) * step / warmup


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor,
              student_temp: float, teacher_temp: float) -> torch.Tensor:  # fmt: skip
    """Cross-entropy of each student view against the teacher's other view. ``student`` and
    ``teacher``: [2n, K], views stacked (first n: view 1)."""
    targets = F.softmax((teacher.detach() - center) / teacher_temp, dim=1).chunk(2)
    logp = F.log_softmax(student / student_temp, dim=1).chunk(2)
    return (-(targets[0] * logp[1]).sum(1).mean() - (targets[1] * logp[0]).sum(1).mean()) / 2


@register_method("dino", pillar="contrastive")
class DINO(JointEmbedding):
    """DINO: a student matches a momentum teacher's centred, sharpened outputs."""

    Config = DINOConfig
    train_defaults = JOINT_TRAIN_DEFAULTS | {"lr": 0.3, "weight_decay": 1e-6}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        k = self.width(cfg.prototypes, 4096)
        self.head = DINOHead(self.backbone.out_dim, self.width(cfg.head_hidden, 2048),
                             cfg.bottleneck, k)  # fmt: skip
        self.teacher_backbone = momentum_copy(self.backbone)
        self.teacher_head = momentum_copy(self.head)
        self.register_buffer("center", torch.zeros(1, k))

    def tau(self, step: int) -> float:
        return cosine_momentum(self.cfg.base_tau, step, self.total_steps)

    def loss(self, batch, step):
        if step > 0 and self.training:
            tau = self.tau(step)
            ema_update(self.teacher_backbone, self.backbone, tau)
            ema_update(self.teacher_head, self.head, tau)
        v1, v2 = self.two_views(batch, step)
        views = torch.cat([v1, v2])
        student = self.head(self.backbone(views))
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_backbone(views))
        t_temp = teacher_temperature(self.cfg, step, self.total_steps)
        loss = dino_loss(student, teacher, self.center, self.cfg.student_temp, t_temp)
        if self.training:
            self.update_center(teacher)
        return {"loss": loss, "teacher_temp": torch.tensor(t_temp)}

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        """c <- m c + (1 - m) * the teacher's mean output over the global batch."""
        mean = dist.all_reduce_mean(teacher.float().mean(0, keepdim=True))
        m = self.cfg.center_momentum
        self.center.mul_(m).add_(mean, alpha=1 - m)
