"""MAE (He et al. 2022): a ViT sees a random quarter of an image's patches; a light decoder
fills in the rest.

The image [C, H, W] is cut into p x p patches (p 4 on 32x32 images, else H / 8, at least 2),
each embedded linearly, with fixed 2-D sin-cos positions. Each step masks ``mask_ratio`` (75%)
of every image's patches at random (a function of (seed, step), so resuming is exact, and
under ``torchrun`` each process takes its rows of the global batch's draw); the
encoder (pre-LN transformer blocks, ``nn.transformer.Block``) reads only the visible ones; the
decoder gets them back with a shared learned mask token at every hidden place, adds its own
positions, and predicts every patch's pixels. With per-patch normalised targets
(t = (x - mean(x)) / sqrt(var(x) + 1e-6) over the patch's pixels, the paper's best choice):

    L = mean over masked patches of mean over its pixels of (pred - t)^2

Visible patches are not scored. ``encode`` runs the encoder on every patch and averages its
tokens (global pooling, as the paper's linear probes on ViT-B). Optimiser: AdamW, betas (0.9,
0.95), weight decay 0.05, lr 1.5e-4 x batch / 256 (the paper's rule; 1.5e-4 at batch 256),
warm-up then cosine. The encoder is small (dim 192, depth 6, 3 heads), the decoder lighter
(dim 128, depth 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from replab import distributed as dist
from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Images
from replab.nn.transformer import Block
from replab.nn.views import step_generator
from replab.registry import register_method


@dataclass
class MAEConfig:
    patch: int = param(0, min=0, help="patch side; 0: 4 on 32x32 images, else max(2, H / 8)")
    dim: int = param(192, min=8)
    depth: int = param(6, min=1)
    heads: int = param(3, min=1)
    decoder_dim: int = param(128, min=8)
    decoder_depth: int = param(2, min=1)
    decoder_heads: int = param(4, min=1)
    mask_ratio: float = param(0.75, min=0.0, max=0.99)
    normalize_targets: bool = param(True, help="per-patch normalised pixel targets")


def sincos_positions(grid: int, dim: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos embedding [grid * grid, dim]: half the channels encode the row,
    half the column, each as sin and cos at geometric frequencies."""
    if dim % 4:
        raise ValueError(f"the embedding width {dim} must be divisible by 4")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")

    def encode(pos):
        angles = pos.flatten().double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/p)(W/p), p*p*C], patches in row-major order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def masked_patch_loss(pred, target, masked, normalize: bool = True) -> torch.Tensor:
    """Mean over the ``masked`` patches [B, N] (True = hidden) of each patch's pixel MSE."""
    if normalize:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred - target).pow(2).mean(-1)
    m = masked.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)


@register_method("mae", pillar="pretext")
class MAE(Method, Encoder):
    """MAE: reconstruct the masked three quarters of an image's patches."""

    Config = MAEConfig
    accepts = Images(square=True)
    train_defaults = {
        "optimizer": "adamw",
        "lr": 1.5e-4,
        "betas": [0.9, 0.95],
        "weight_decay": 0.05,
        "batch_size": 256,
        "schedule": "cosine",
        "warmup_steps": 100,
        "grad_clip": 0.0,
    }

    @classmethod
    def data_problem(cls, info, cfg):
        problem = super().data_problem(info, cfg)
        if problem is not None:
            return problem
        side = cls.patch_side(cfg, info.shape)
        if info.shape[1] % side:
            return f"needs images whose side is a multiple of its patch side {side}"
        return None

    @staticmethod
    def patch_side(cfg, shape) -> int:
        if cfg.patch:
            return cfg.patch
        return 4 if shape[1] == 32 else max(2, shape[1] // 8)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, h, _ = info.shape
        self.p = self.patch_side(cfg, info.shape)
        self.grid = h // self.p
        n, patch_pixels = self.grid**2, self.p * self.p * c
        self.embed = nn.Linear(patch_pixels, cfg.dim)
        self.register_buffer("positions", sincos_positions(self.grid, cfg.dim), False)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, 4, 0.0) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.to_decoder = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.register_buffer(
            "decoder_positions", sincos_positions(self.grid, cfg.decoder_dim), False
        )
        self.decoder = nn.ModuleList(
            Block(cfg.decoder_dim, cfg.decoder_heads, 4, 0.0) for _ in range(cfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(cfg.decoder_dim)
        self.to_pixels = nn.Linear(cfg.decoder_dim, patch_pixels)
        self.n_keep = max(1, round(n * (1 - cfg.mask_ratio)))
        nn.init.normal_(self.mask_token, std=0.02)

    def _encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def random_masking(self, b: int, step: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(kept indices [B, n_keep], masked [B, N] True where hidden): each image's patches in
        a random order, the first ``n_keep`` visible; a function of (seed, step)."""
        n = self.grid**2
        # the global batch's draw, this process's rows: k processes mask as one does
        world, rank = dist.world_size(), dist.rank()
        noise = torch.rand(b * world, n, generator=step_generator(self.seed, step))
        noise = noise[rank * b : (rank + 1) * b].to(device)
        order = noise.argsort(dim=1)
        keep = order[:, : self.n_keep]
        masked = torch.ones(b, n, dtype=torch.bool, device=device)
        masked.scatter_(1, keep, False)
        return keep, masked

    def loss(self, batch, step):
        x = batch["x"]
        patches = patchify(x, self.p)
        b, n, _ = patches.shape
        keep, masked = self.random_masking(b, step, x.device)
        tokens = self.embed(patches) + self.positions
        visible = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
        latent = self.to_decoder(self._encode_tokens(visible))
        full = self.mask_token.to(latent.dtype).expand(b, n, -1).clone()
        full = full.scatter(1, keep[..., None].expand(-1, -1, latent.shape[-1]), latent)
        h = full + self.decoder_positions
        for block in self.decoder:
            h = block(h)
        pred = self.to_pixels(self.decoder_norm(h))
        loss = masked_patch_loss(pred, patches, masked, self.cfg.normalize_targets)
        return {"loss": loss, "masked_share": masked.float().mean().detach()}

    def encode(self, x):
        tokens = self.embed(patchify(x, self.p)) + self.positions
        return self._encode_tokens(tokens).mean(1)
