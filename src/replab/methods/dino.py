"""DINO (Caron et al. 2021): self-distillation without labels. A student matches the sharpened,
centred output distribution of a momentum teacher on another view of the same image.

student: backbone f, head h (MLP -> 256-d bottleneck -> L2 norm -> K prototypes of unit norm);
teacher: f', h', their exponential moving average (tau ``base_tau`` -> 1, cosine). For views
v1, v2, with student temperature T_s, teacher temperature T_t and centre c:

    P_t(v) = softmax((h'(f'(v)) - c) / T_t)        P_s(v) = softmax(h(f(v)) / T_s)
    L = mean over the batch of [ H(P_t(v1), P_s(v2)) + H(P_t(v2), P_s(v1)) ] / 2

H(a, b) = -sum_k a_k log b_k, the teacher's side without gradient. After each step the centre
moves towards the teacher's mean output over the global batch, c <- m c + (1 - m) mean, m 0.9
(all-reduced under ``torchrun``); centring (against one prototype winning) and sharpening
(T_t < T_s, against the uniform output) together keep the outputs from collapsing. T_t moves
linearly from ``teacher_temp_start`` to ``teacher_temp`` over the warm-up share of the run, then
stays. The centre is a buffer and the teacher is part of the model: resuming is exact.

Defaults are the DINO reference code's (teacher momentum 0.996, T_t 0.04 throughout, the head's
linear layers drawn from N(0, 0.02) with zero biases) with batch norm in the head, an option in
both DINO's and solo-learn's code. Why: with a randomly drawn head every image lands in a narrow
cone (mean pairwise cosine of the bottleneck 0.997 on digits with PyTorch's default
initialisation, 0.82 with DINO's, 0.19 with batch norm), so the centred teacher is near uniform
at step 0 and the student learns the uniform output: the loss sits at ln K. solo-learn's CIFAR
setting (``teacher_temp=0.07 base_tau=0.9995 head_norm=none``) stays there on a CPU budget;
with these defaults the loss falls. Multi-crop (DINO's extra small crops) is not here: two
global views, as in solo-learn's CIFAR baseline. Widths: 4096 prototypes and a 2048-wide head
with the ResNet-18, a quarter of each with the small conv encoder; LARS lr 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab import distributed as dist
from replab.config import param
from replab.methods.joint import JOINT_TRAIN_DEFAULTS, JointEmbedding, ViewsConfig
from replab.nn.heads import GlobalBatchNorm1d, cosine_momentum, ema_update, momentum_copy
from replab.registry import register_method


@dataclass
class DINOConfig(ViewsConfig):
    head_hidden: int = param(0, min=0, help="0: 2048 (resnet18), 512 (conv)")
    bottleneck: int = param(256, min=1)
    prototypes: int = param(0, min=0, help="K, the output size; 0: 4096 (resnet18), 1024 (conv)")
    head_norm: str = param("batch", choices=["batch", "none"], help="batch norm in the head's MLP")
    student_temp: float = param(0.1, help="T_s")
    teacher_temp: float = param(0.04, help="T_t after its warm-up")
    teacher_temp_start: float = param(0.04, help="T_t at step 0")
    teacher_temp_warmup: float = param(0.05, min=0.0, max=1.0, help="share of the run")
    center_momentum: float = param(0.9, min=0.0, max=1.0)
    base_tau: float = param(0.996, min=0.0, max=1.0, help="teacher momentum at step 0 (-> 1)")

    def check(self) -> None:
        for name in ("student_temp", "teacher_temp", "teacher_temp_start"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")


class DINOHead(nn.Module):
    """MLP (GELU, optionally batch norm) to a bottleneck, L2-normalised, then K prototypes of
    unit norm (DINO's weight-normalised last layer with its gain fixed at 1)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, prototypes: int, norm: bool):
        super().__init__()

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Linear(a, b), *([GlobalBatchNorm1d(b)] if norm else []), nn.GELU()]

        self.mlp = nn.Sequential(*block(in_dim, hidden), *block(hidden, hidden),
                                 nn.Linear(hidden, bottleneck))  # fmt: skip
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
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


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of ``p``."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


@register_method("dino", pillar="contrastive")
class DINO(JointEmbedding):
    """DINO: a student matches a momentum teacher's centred, sharpened outputs."""

    Config = DINOConfig
    train_defaults = JOINT_TRAIN_DEFAULTS | {"lr": 0.3, "weight_decay": 1e-6}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        k = self.width(cfg.prototypes, 4096)
        self.head = DINOHead(self.backbone.out_dim, self.width(cfg.head_hidden, 2048),
                             cfg.bottleneck, k, norm=cfg.head_norm == "batch")  # fmt: skip
        self.target_backbone = momentum_copy(self.backbone)
        self.target_head = momentum_copy(self.head)
        self.register_buffer("center", torch.zeros(1, k))

    def tau(self, step: int) -> float:
        return cosine_momentum(self.cfg.base_tau, step, self.total_steps)

    def loss(self, batch, step):
        if step > 0 and self.training:
            tau = self.tau(step)
            ema_update(self.target_backbone, self.backbone, tau)
            ema_update(self.target_head, self.head, tau)
        views = torch.cat(self.two_views(batch, step))
        student = self.head(self.backbone(views))
        with torch.no_grad():
            teacher = self.target_head(self.target_backbone(views)).float()
        t_temp = teacher_temperature(self.cfg, step, self.total_steps)
        loss = dino_loss(student.float(), teacher, self.center, self.cfg.student_temp, t_temp)
        with torch.no_grad():  # collapse shows here: both at ln K (uniform) or both near 0
            targets = F.softmax((teacher - self.center) / t_temp, dim=1)
            logs = {"teacher_entropy": entropy(targets).mean(),
                    "teacher_mean_entropy": entropy(targets.mean(0))}  # fmt: skip
        if self.training:
            self.update_center(teacher)
        return {"loss": loss, "tau": torch.tensor(self.tau(step)),
                "teacher_temp": torch.tensor(t_temp), **logs}  # fmt: skip

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        """c <- m c + (1 - m) * the teacher's mean output over the global batch."""
        mean = dist.all_reduce_mean(teacher.mean(0, keepdim=True))
        m = self.cfg.center_momentum
        self.center.mul_(m).add_(mean, alpha=1 - m)
