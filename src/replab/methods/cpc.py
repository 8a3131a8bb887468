"""Contrastive Predictive Coding (van den Oord, Li and Vinyals 2018) on audio and on images.

Both predict latents a few steps ahead from an autoregressive context and score each prediction
against negatives with InfoNCE (``nn.losses.InfoNCELoss``):
``L_k = -E log [exp(z_{t+k}^T W_k c_t) / sum_{z_j in {z_{t+k}} + negatives} exp(z_j^T W_k c_t)]``,
averaged over the prediction steps k = 1..K.

- ``cpc`` (audio, section 3.1 of the paper): a strided conv encoder on the raw waveform
  (kernels 10/8/4/4/4, strides 5/4/2/2/2, ReLU: one latent z_t per 160 samples), a GRU context
  c_t = GRU(z_<=t) of 256 units, and a linear predictor W_k for each of the K = 12 future steps.
  ``encode`` is the context averaged over time (``frame_features`` and ``frame_latents`` give
  c_t and z_t per frame).
- ``cpc_image`` (section 3.2): an image cut into a grid of overlapping patches (7 x 7 patches of
  a quarter of the image side, half-overlapping, as the paper's 64-pixel crops of 256-pixel
  images), each encoded to z by a backbone from ``nn.backbones``; a masked convolutional
  context over rows (PixelCNN-style: c at row r sees only rows <= r) predicts the latents of the
  rows below, up to K = 5 rows as in the paper (a row overlaps the next by half, as there, so
  one row ahead is the easiest step). ``encode`` is the context averaged over the grid.

Negatives come from a pool of latents of the whole batch (``nn.losses.draw_negatives``):
``batch`` (default) draws from other times/positions and other sequences/images alike,
``same_sequence`` only other times of the same sequence (other positions of the same image),
``other_sequences`` only other sequences (other images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Audio, Images
from replab.nn.backbones import BACKBONES, make_backbone
from replab.nn.losses import InfoNCELoss, draw_negatives
from replab.nn.views import step_generator
from replab.registry import register_method

NEGATIVES = {"batch": "any", "same_sequence": "same_group", "other_sequences": "other_groups"}

# The paper (audio): Adam, lr 2e-4, 8 GPUs x 8 windows of 20,480 samples (batch 64).
CPC_TRAIN_DEFAULTS = {
    "optimizer": "adam",
    "lr": 2e-4,
    "batch_size": 64,
    "schedule": "constant",
    "grad_clip": 0.0,
}

KERNELS = (10, 8, 4, 4, 4)
STRIDES = (5, 4, 2, 2, 2)
PADDINGS = (3, 2, 1, 1, 1)  # so that every 160 samples give exactly one latent


def conv_output_length(length: int) -> int:
    """Latents the audio encoder makes of ``length`` samples (length // 160 for multiples)."""
    for k, s, p in zip(KERNELS, STRIDES, PADDINGS, strict=True):
        length = (length + 2 * p - k) // s + 1
    return length


class AudioEncoder(nn.Module):
    """The paper's strided conv encoder: [B, C_in, L] -> latents [B, channels, L / 160]."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        layers, prev = [], in_channels
        for k, s, p in zip(KERNELS, STRIDES, PADDINGS, strict=True):
            layers += [nn.Conv1d(prev, channels, k, s, p), nn.ReLU()]
            prev = channels
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def info_nce_steps(
    criterion: InfoNCELoss,
    predictions: list[torch.Tensor],
    keys: torch.Tensor,
    positives: list[torch.Tensor],
    group_size: int,
    num_negatives: int,
    mode: str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mean InfoNCE over prediction steps, and each step's accuracy (positive scored highest).

    ``predictions[k]`` [N_k, D] are scored against the pool ``keys`` [P, D]; ``positives[k]``
    [N_k] are their keys' indices; negatives are drawn per prediction from the pool."""
    losses, accuracies = [], []
    for pred, pos in zip(predictions, positives, strict=True):
        neg = draw_negatives(pos, len(keys), group_size, num_negatives, mode, generator)
        logits, target = criterion.logits(criterion.scores(pred, keys), pos, neg)
        losses.append(F.cross_entropy(logits, target))
        accuracies.append((logits.argmax(1) == target).float().mean().detach())
    return torch.stack(losses).mean(), accuracies


# ----------------------------------------------------------------------------------------------
# CPC on audio


@dataclass
class CPCConfig:
    channels: int = param(512, min=1, help="encoder channels and latent size (the paper's 512)")
    context_dim: int = param(256, min=1, help="GRU units (the paper's 256)")
    prediction_steps: int = param(12, min=1, help="future latents predicted (the paper's 12)")
    negatives: str = param("batch", choices=list(NEGATIVES), help="where negatives come from")
    num_negatives: int = param(128, min=1, help="negatives per prediction")
    crop: int = param(0, min=0, help="train on random windows of this many samples; 0: whole")


@register_method("cpc", pillar="contrastive")
class CPC(Method, Encoder):
    """CPC on raw audio (van den Oord et al. 2018): predict future latents against negatives."""

    Config = CPCConfig
    accepts = Audio()
    train_defaults = CPC_TRAIN_DEFAULTS

    @classmethod
    def data_problem(cls, info, cfg):
        """Audio long enough for the crop and the prediction steps the settings ask for."""
        problem = super().data_problem(info, cfg)
        if problem is not None:
            return problem
        samples = info.shape[1]
        if cfg.crop > samples:
            return f"gets {samples} samples per input, fewer than model.crop={cfg.crop}"
        window = cfg.crop or samples
        frames = conv_output_length(window)
        if frames <= cfg.prediction_steps:
            return (
                f"gets {window} samples, {frames} latents (one per 160): too few to predict "
                f"model.prediction_steps={cfg.prediction_steps} ahead; use longer inputs"
            )
        return None

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        shape = tuple(info.shape)
        self.encoder = AudioEncoder(shape[0], cfg.channels)
        self.context = nn.GRU(cfg.channels, cfg.context_dim, batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(cfg.context_dim, cfg.channels, bias=False)
            for _ in range(cfg.prediction_steps)
        )
        self.criterion = InfoNCELoss()

    def frame_latents(self, x: torch.Tensor) -> torch.Tensor:
        """z_t per frame: [B, T, channels] (one per 160 samples)."""
        return self.encoder(x).transpose(1, 2)

    def _context(self, z: torch.Tensor) -> torch.Tensor:
        return self.context(z)[0]

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """c_t per frame: [B, T, context_dim]."""
        return self._context(self.frame_latents(x))

    def encode(self, x):
        return self.frame_features(x).mean(1)

    def _crop(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        crop = self.cfg.crop
        if not crop or crop >= x.shape[-1]:
            return x
        start = torch.randint(0, x.shape[-1] - crop + 1, (len(x),), generator=generator)
        idx = start.to(x.device)[:, None] + torch.arange(crop, device=x.device)
        return x.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1))

    def loss(self, batch, step):
        generator = step_generator(self.seed, step)
        x = self._crop(batch["x"], generator)
        z = self.frame_latents(x)  # [B, T, C]
        c = self._context(z)  # [B, T, D]
        b, t, _ = z.shape
        keys = z.reshape(b * t, -1)
        preds, positives = [], []
        times = torch.arange(t, device=z.device)
        seq = torch.arange(b, device=z.device)[:, None] * t
        for k, w in enumerate(self.predictors, start=1):
            preds.append(w(c[:, : t - k]).reshape(-1, z.shape[2]))
            positives.append((seq + times[k:]).reshape(-1))
        loss, acc = info_nce_steps(
            self.criterion,
            preds,
            keys,
            positives,
            t,
            self.cfg.num_negatives,
            NEGATIVES[self.cfg.negatives],
            generator,
        )
        return {"loss": loss, "accuracy": torch.stack(acc).mean(), "accuracy_step1": acc[0]}


# ----------------------------------------------------------------------------------------------
# CPC on images


def patch_grid(size: int, grid: int, patch: int = 0) -> tuple[int, int]:
    """(patch side, stride) of a ``grid`` x ``grid`` tiling of a ``size`` image whose patches
    overlap by half: patch = 2 size / (grid + 1) unless given, stride = (size - patch) /
    (grid - 1). Raises ValueError when the grid does not fit exactly."""
    if patch == 0:
        if (2 * size) % (grid + 1):
            raise ValueError(
                f"a {grid}x{grid} grid of half-overlapping patches does not tile {size} pixels "
                f"(2 x {size} / {grid + 1} is not whole); set model.patch"
            )
        patch = 2 * size // (grid + 1)
    if patch > size or (size - patch) % (grid - 1):
        raise ValueError(f"{grid} patches of {patch} pixels do not tile {size} pixels evenly")
    return patch, (size - patch) // (grid - 1)


class MaskedRowConv(nn.Module):
    """A convolution over a grid [B, D, R, C] whose output at row r sees only rows <= r."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(channels, channels, kernel)

    def forward(self, h):
        k = self.kernel
        # pad k - 1 rows above and none below: row r's window covers rows r - k + 1 .. r
        return self.conv(F.pad(h, (k // 2, (k - 1) // 2, k - 1, 0)))


class RowContext(nn.Module):
    """Residual stack of masked row convolutions: c[r] = f(z[rows <= r]), PixelCNN-style."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(MaskedRowConv(channels) for _ in range(layers))

    def forward(self, z):
        h = z
        for block in self.blocks:
            h = h + block(F.relu(h))
        return h


@dataclass
class CPCImageConfig:
    grid: int = param(7, min=2, help="patches per side (the paper's 7)")
    patch: int = param(0, min=0, help="patch side in pixels; 0: half-overlapping (2 S/(grid+1))")
    backbone: str = param("conv", choices=list(BACKBONES), help="patch encoder")
    context_layers: int = param(4, min=1, help="masked 3x3 convolutions of the row context")
    prediction_steps: int = param(5, min=1, help="rows below predicted (the paper's up to 5)")
    negatives: str = param("batch", choices=list(NEGATIVES), help="where negatives come from")
    num_negatives: int = param(128, min=1, help="negatives per prediction")

    def check(self):
        if self.prediction_steps >= self.grid:
            raise ValueError(
                f"prediction_steps: {self.prediction_steps} rows below, but the grid has only "
                f"{self.grid} rows"
            )


@register_method("cpc_image", pillar="contrastive")
class CPCImage(Method, Encoder):
    """CPC on images (van den Oord et al. 2018): predict the patch latents of the rows below."""

    Config = CPCImageConfig
    accepts = Images(square=True)
    # The paper trains with Adam, lr 2e-4 (its audio setting; the image one is not given).
    train_defaults = {**CPC_TRAIN_DEFAULTS, "batch_size": 32}

    @classmethod
    def data_problem(cls, info, cfg):
        """Square images that the grid of patches tiles exactly."""
        problem = super().data_problem(info, cfg)
        if problem is None:
            try:
                patch_grid(info.shape[1], cfg.grid, cfg.patch)
            except ValueError as e:
                return f"cannot cut its images into the model.grid: {e}"
        return problem

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        shape = tuple(info.shape)
        self.patch, self.stride = patch_grid(shape[1], cfg.grid, cfg.patch)
        self.backbone = make_backbone(cfg.backbone, (shape[0], self.patch, self.patch))
        dim = self.backbone.out_dim
        self.context = RowContext(dim, cfg.context_layers)
        self.predictors = nn.ModuleList(
            nn.Linear(dim, dim, bias=False) for _ in range(cfg.prediction_steps)
        )
        self.criterion = InfoNCELoss()

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """The grid of patches, row by row: [B, grid * grid, C, patch, patch]."""
        p, s = self.patch, self.stride
        u = x.unfold(2, p, s).unfold(3, p, s)  # [B, C, R, Cg, p, p]
        return u.permute(0, 2, 3, 1, 4, 5).reshape(len(x), -1, x.shape[1], p, p)

    def patch_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Patch latents z as a grid [B, D, R, C]."""
        g = self.cfg.grid
        p = self.patches(x)
        z = self.backbone(p.reshape(-1, *p.shape[2:]))
        return z.reshape(len(x), g, g, -1).permute(0, 3, 1, 2)

    def encode(self, x):
        return self.context(self.patch_latents(x)).mean(dim=(2, 3))

    def loss(self, batch, step):
        generator = step_generator(self.seed, step)
        z = self.patch_latents(batch["x"])  # [B, D, R, C]
        c = self.context(z)
        b, d, g, _ = z.shape
        keys = z.permute(0, 2, 3, 1).reshape(-1, d)  # key (image, row, col): one group per image
        ctx = c.permute(0, 2, 3, 1)  # [B, R, C, D]
        index = torch.arange(b * g * g, device=z.device).reshape(b, g, g)
        preds, positives = [], []
        for k, w in enumerate(self.predictors, start=1):
            preds.append(w(ctx[:, : g - k]).reshape(-1, d))
            positives.append(index[:, k:].reshape(-1))
        loss, acc = info_nce_steps(
            self.criterion,
            preds,
            keys,
            positives,
            g * g,
            self.cfg.num_negatives,
            NEGATIVES[self.cfg.negatives],
            generator,
        )
        return {"loss": loss, "accuracy": torch.stack(acc).mean(), "accuracy_step1": acc[0]}
