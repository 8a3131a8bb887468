"""SimCLR (Chen et al. 2020): two random views of each image should agree in a projected space.

Each step draws two views of every image (``nn.views``, a pure function of (train seed, step)),
maps them through the backbone f and the projector g(h) = W2 relu(W1 h), and minimises the NT-Xent
loss of the pairs (``nn.losses.NTXentLoss``), every other view in the global batch serving as a
negative. The representation (``encode``) is the backbone's pooled output h, without the
projector, as in the paper.

Defaults, from the paper's CIFAR-10 setting (appendix B.9) where it has one: temperature 0.5,
colour-jitter strength 0.5, no Gaussian blur, crops of 8-100% of the area, flips, grayscale 0.2;
the projector's hidden layer as wide as the representation (2048-2048-128 for ResNet-50 in the
paper, so 512-512-128 for ResNet-18) and a 128-d output. Backbone ``auto``: ResNet-18 with the
CIFAR stem for 32x32 colour images (the paper's CIFAR setting), otherwise the foundation's conv
encoder (fast on a CPU, disentanglement_lib's at 64x64). Where the object is small (sprites),
crops down to 8% often miss it, so there ``crop_min=0.3`` learns far more (the README's "what to
expect" has the measured runs).

Optimiser: the paper trains large batches (256-8192) with LARS, lr 0.3 x batch / 256 on ImageNet
(searched over 0.5, 1.0, 1.5 on CIFAR-10), weight decay 1e-6. For the small batches a CPU or one
GPU runs, replab defaults to Adam, lr 1e-3, weight decay 1e-6, batch 256, cosine decay; for large
batches use LARS as the paper does (``train.optimizer=lars train.lr=...``).

BatchNorm (ResNet-18) normalises each process's batch under ``torchrun`` (no global BN: PyTorch's
SyncBatchNorm runs on GPUs only); the conv backbone and the projector have no BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from replab.config import param
from replab.methods.joint import JointEmbedding, ViewsConfig
from replab.nn.losses import NTXentLoss
from replab.registry import register_method

SIMCLR_TRAIN_DEFAULTS = {
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "batch_size": 256,
    "schedule": "cosine",
    "grad_clip": 0.0,
}


@dataclass
class SimCLRConfig(ViewsConfig):
    projection_hidden: int = param(0, min=0, help="projector hidden width; 0: the backbone's")
    projection_dim: int = param(128, min=1, help="projector output (the paper's 128)")
    temperature: float = param(0.5, help="NT-Xent temperature; the paper's 0.5 on CIFAR-10")

    def check(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature!r}")


@register_method("simclr", pillar="contrastive")
class SimCLR(JointEmbedding):
    """SimCLR (Chen et al. 2020): NT-Xent between two augmented views of each image."""

    Config = SimCLRConfig
    train_defaults = SIMCLR_TRAIN_DEFAULTS

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        width = self.backbone.out_dim
        hidden = cfg.projection_hidden or width
        self.projector = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, cfg.projection_dim)
        )
        self.criterion = NTXentLoss(cfg.temperature)

    def loss(self, batch, step):
        z1, z2 = self.projected_views(batch, step)
        logits, positive = self.criterion.logits_and_targets(z1, z2)
        loss = nn.functional.cross_entropy(logits, positive)
        accuracy = (logits.argmax(1) == positive).float().mean()
        return {"loss": loss, "pair_accuracy": accuracy.detach()}
