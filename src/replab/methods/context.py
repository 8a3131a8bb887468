"""Context prediction (Doersch et al. 2015): where is a patch relative to the centre patch?

An 8-way classification of a neighbour's position around the centre of a 3x3 grid of patches,
with gaps and jitter between patches so that the answer cannot be read off low-level continuity.
The representation is the backbone's features of the 9 patches of the centred grid
(``GridPretext``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab.config import ConfigError, param
from replab.methods.pretext import GridPretext, accuracy, mlp_head, take_patches, uniform_ints
from replab.nn.backbones import BACKBONES, make_backbone
from replab.registry import register_method

# Doersch et al.: 96-px patches, 48-px gaps, up to 7 px of jitter: a grid of 3 * 96 + 2 * 48 px.
DOERSCH_PATCH, DOERSCH_GAP, DOERSCH_JITTER = 96, 48, 7
# The 8 neighbours of the centre (row, column offsets), label = raster order around the centre:
# 0 1 2 / 3 . 4 / 5 6 7.
NEIGHBOUR_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_NEIGHBOUR_CELLS = [4 + 3 * dr + dc for dr, dc in NEIGHBOUR_OFFSETS]  # grid cells 0-3, 5-8


def context_geometry(size: int, patch: int = 0, gap: int = -1, jitter: int = -1):
    """(patch, gap, jitter) in pixels for ``size`` x ``size`` inputs.

    Auto (0/-1) keeps the paper's proportions 96 : 48 : 7 with the grid spanning the image:
    3P + 2(P/2) + 2(7P/96) = size, jitter at least 1 px where the image has room. That gives
    64x64: (15, 8, 1); 32x32: (7, 4, 1); 28x28: (6, 3, 1). Below 13x13 the auto patch would be
    under 3 px (8x8: 1 px), which carries no context to speak of, so it is refused; explicit
    values (e.g. patch_size=2 gap=1 jitter=0 on 8x8) are taken as given if they fit.
    """
    auto = patch == 0
    if auto:
        patch = size * DOERSCH_PATCH // (4 * DOERSCH_PATCH + 2 * DOERSCH_JITTER)
        if patch < 3:
            raise ConfigError(
                f"context: {size}x{size} inputs are too small for patches of at least 3 px "
                "(needs 13x13 or more); set model.patch_size, model.gap and model.jitter to "
                "force a geometry"
            )
    if gap < 0:
        gap = max(1, (patch + 1) // 2)
    slack = size - 3 * patch - 2 * gap
    if jitter < 0:
        jitter = max(0, min(max(1, round(patch * DOERSCH_JITTER / DOERSCH_PATCH)), slack // 2))
    if slack - 2 * jitter < 0:
        raise ConfigError(
            f"context: 3 patches of {patch} px, 2 gaps of {gap} px and jitter {jitter} px need "
            f"{3 * patch + 2 * gap + 2 * jitter} px, more than the {size} px of the input"
        )
    return patch, gap, jitter


def context_grid(x, patch: int, gap: int, jitter: int, random: bool = True, generator=None):
    """The 3x3 grid of patches [B, 9, C, P, P], raster order (cell 4 is the centre).

    With ``random`` the grid's origin is uniform over the room the image leaves and each patch
    is moved by up to ``jitter`` px in each direction, independently (Doersch et al.); otherwise
    the grid is centred and unjittered.
    """
    b, size = len(x), x.shape[-1]
    step = patch + gap
    footprint = 3 * patch + 2 * gap
    base = torch.arange(3, device=x.device) * step
    rows = base.repeat_interleave(3)[None].expand(b, 9)  # cell k at row k // 3, column k % 3
    cols = base.repeat(3)[None].expand(b, 9)
    if random:
        origin = uniform_ints(jitter, size - footprint - jitter, (b, 2, 1), x.device, generator)
        shift = uniform_ints(-jitter, jitter, (b, 2, 9), x.device, generator)
        tops = rows + origin[:, 0] + shift[:, 0]
        lefts = cols + origin[:, 1] + shift[:, 1]
    else:
        tops = rows + (size - footprint) // 2
        lefts = cols + (size - footprint) // 2
    return take_patches(x, tops, lefts, patch)


def context_pairs(grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (centre, neighbour) pair of a grid [B, 9, ...] -> (centres [8B, ...],
    neighbours [8B, ...], labels [8B]), label = the neighbour's position (NEIGHBOUR_OFFSETS)."""
    b = grid.shape[0]
    centre = grid[:, 4:5].expand(b, 8, *grid.shape[2:])
    neighbours = grid[:, _NEIGHBOUR_CELLS]
    labels = torch.arange(8, device=grid.device).repeat(b)
    return centre.flatten(0, 1), neighbours.flatten(0, 1), labels


@dataclass
class ContextConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    patch_size: int = param(0, min=0, help="patch side in px; 0: the paper's 96/398 of the input")
    gap: int = param(-1, min=-1, help="px between patches; -1: half a patch (paper: 48 of 96)")
    jitter: int = param(-1, min=-1, help="max shift per patch in px; -1: 7/96 of a patch")
    head_hidden: int = param(
        512, min=0, help="hidden units of the pair classifier (paper: fc7); 0: linear"
    )


@register_method("context", pillar="pretext")
class Context(GridPretext):
    """Context prediction (Doersch et al. 2015): where is a patch relative to the centre patch?

    loss = -1/(8B) sum_i sum_k log softmax(head([f(c_i), f(n_ik)]))_k, c_i the centre patch of
    image i and n_ik its neighbour at position k (8 positions, gap and jitter between patches).
    Each sampled grid gives all 8 pairs from one backbone pass over its 9 patches.
    """

    Config = ContextConfig
    # The paper trains an AlexNet-style network with SGD for weeks; its settings do not carry
    # over to these small backbones. Adam(1e-3), batch 64 is replab's choice.
    train_defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}

    @classmethod
    def geometry(cls, size, cfg):
        """(patch, gap, jitter) in pixels."""
        return context_geometry(size, cfg.patch_size, cfg.gap, cfg.jitter)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, size, _ = self.shape
        self.patch, self.gap, self.jitter = self.geometry(size, cfg)
        self.backbone = make_backbone(cfg.backbone, (c, self.patch, self.patch))
        self.head = mlp_head(2 * self.backbone.out_dim, cfg.head_hidden, 8)

    def grid(self, x, jitter, generator=None):
        return context_grid(x, self.patch, self.gap, self.jitter, jitter, generator)

    def loss(self, batch, step):
        feats = self.patch_features(self.grid(batch["x"], jitter=True))
        centre, neighbour, labels = context_pairs(feats)
        logits = self.head(torch.cat([centre, neighbour], 1))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy(logits, labels)}
