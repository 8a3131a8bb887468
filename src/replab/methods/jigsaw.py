"""Jigsaw puzzles (Noroozi and Favaro 2016): which permutation shuffled a 3x3 grid of tiles?

The permutations come from a fixed set of maximally distant ones; a siamese backbone encodes each
tile alone. The representation is the backbone's features of the 9 tiles of the centred grid
(``GridPretext``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from replab.config import ConfigError, param
from replab.methods.pretext import GridPretext, accuracy, mlp_head, take_patches, uniform_ints
from replab.nn.backbones import BACKBONES, make_backbone
from replab.registry import register_method


def all_permutations(k: int) -> np.ndarray:
    """Every permutation of range(k) in lexicographic order, int8 [k!, k]."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for n in range(1, k + 1):
        first = np.repeat(np.arange(n, dtype=np.int8), len(perms))
        rest = np.tile(perms, (n, 1))
        rest = rest + (rest >= first[:, None])  # the others, renumbered around ``first``
        perms = np.concatenate([first[:, None], rest], axis=1).astype(np.int8)
    return perms


@functools.lru_cache(maxsize=8)
def maximal_hamming_permutations(n: int, k: int = 9) -> np.ndarray:
    """``n`` permutations of range(k) chosen greedily for large Hamming distances [n, k].

    Noroozi and Favaro's Algorithm 1: start from one permutation, then repeatedly add the
    candidate farthest from those chosen. The paper scores a candidate by its average distance
    to the chosen set; alone that lets near neighbours in (for n=100, k=9 the set's minimum
    distance is 2), so the score here is the minimum distance first, the paper's average
    breaking ties (minimum distance 6 for n=100). It starts from the identity rather than a
    random permutation and takes the first best candidate in lexicographic order, so the set is
    the same everywhere. Computed once per process (about a second for 9! candidates).
    """
    cand = all_permutations(k)
    if not 1 <= n <= len(cand):
        raise ConfigError(f"model.num_permutations: must be between 1 and {len(cand)}, got {n}")
    cols = np.ascontiguousarray(cand.T)
    total = np.zeros(len(cand), np.int64)
    nearest = np.full(len(cand), k + 1, np.int64)
    taken = np.zeros(len(cand), bool)
    chosen = [0]
    taken[0] = True
    for _ in range(n - 1):
        d = (cols != cand[chosen[-1]][:, None]).sum(0)
        total += d
        np.minimum(nearest, d, out=nearest)
        score = nearest * (k * n + 1) + total  # minimum first, then the sum (= average)
        score[taken] = -1
        j = int(score.argmax())
        chosen.append(j)
        taken[j] = True
    out = cand[chosen].astype(np.int64)
    out.flags.writeable = False
    return out


# Noroozi and Favaro: a 225x225 crop in 3x3 cells of 75 px, a random 64x64 tile in each.
NOROOZI_CELL, NOROOZI_TILE = 75, 64


def jigsaw_geometry(size: int, tile: int = 0) -> tuple[int, int]:
    """(cell, tile) in px: cells are a third of the input; auto tiles are 64/75 of a cell
    (64x64: (21, 18); 32x32: (10, 9); 28x28: (9, 8)). Below 9x9 auto tiles would be under
    3 px (8x8: 2 px) and are refused; an explicit ``tile`` <= cell is taken as given."""
    cell = size // 3
    if tile == 0:
        tile = round(cell * NOROOZI_TILE / NOROOZI_CELL)
        if tile < 3:
            raise ConfigError(
                f"jigsaw: {size}x{size} inputs are too small for tiles of at least 3 px "
                "(needs 9x9 or more); set model.tile_size to force a tile size"
            )
    if not 1 <= tile <= cell:
        raise ConfigError(f"jigsaw: tile_size must be between 1 and {cell} px, got {tile}")
    return cell, tile


def jigsaw_tiles(x, cell: int, tile: int, random: bool = True, generator=None) -> torch.Tensor:
    """One tile per cell of the centred 3x3 grid [B, 9, C, t, t], raster order; at a random
    place in its cell with ``random`` (the paper's gap and jitter), else centred in it."""
    b, size = len(x), x.shape[-1]
    margin = (size - 3 * cell) // 2
    base = margin + torch.arange(3, device=x.device) * cell
    rows = base.repeat_interleave(3)[None].expand(b, 9)
    cols = base.repeat(3)[None].expand(b, 9)
    if random:
        off = uniform_ints(0, cell - tile, (b, 2, 9), x.device, generator)
    else:
        off = torch.full((b, 2, 9), (cell - tile) // 2, device=x.device)
    return take_patches(x, rows + off[:, 0], cols + off[:, 1], tile)


def shuffle_tiles(tiles: torch.Tensor, perms: torch.Tensor, generator=None):
    """Shuffle each image's tiles [B, 9, ...] by a permutation drawn uniformly from ``perms``
    [N, 9]: position j shows tile ``perms[label, j]``. Returns (shuffled, labels [B])."""
    labels = torch.randint(len(perms), (len(tiles),), device=tiles.device, generator=generator)
    order = perms[labels]  # [B, 9]
    shuffled = tiles[torch.arange(len(tiles), device=tiles.device)[:, None], order]
    return shuffled, labels


def normalise_tiles(tiles: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each tile to zero mean and unit standard deviation on its own (the paper's guard against
    matching tiles by their low-level statistics)."""
    dims = tuple(range(2, tiles.ndim))
    mean = tiles.mean(dims, keepdim=True)
    std = tiles.std(dims, keepdim=True, unbiased=False)
    return (tiles - mean) / (std + eps)


@dataclass
class JigsawConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    tile_size: int = param(0, min=0, help="tile side in px; 0: 64/75 of a third of the input")
    num_permutations: int = param(
        100, min=2, max=1000, help="size of the maximal-Hamming permutation set"
    )
    head_hidden: int = param(
        1024, min=0, help="hidden units after the 9 concatenated tiles (paper: fc7); 0: linear"
    )


@register_method("jigsaw", pillar="pretext")
class Jigsaw(GridPretext):
    """Jigsaw puzzles (Noroozi and Favaro 2016): which permutation shuffled the 3x3 tiles?

    A siamese backbone encodes each tile alone; the 9 features, concatenated in the shuffled
    order, go to the classifier: loss = -1/B sum_i log softmax(head([f(t_i,p(1)), ...,
    f(t_i,p(9))]))_{p_i}, p_i drawn uniformly from the fixed permutation set.
    """

    Config = JigsawConfig
    # Noroozi and Favaro: SGD, lr 0.01, batch 256; momentum 0.9 and weight decay 5e-4 are the
    # usual Caffe settings their released solver builds on.
    train_defaults = {
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 256,
    }

    @classmethod
    def geometry(cls, size, cfg):
        """(cell, tile) in pixels."""
        return jigsaw_geometry(size, cfg.tile_size)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, size, _ = self.shape
        self.cell, self.tile = self.geometry(size, cfg)
        perms = torch.as_tensor(np.array(maximal_hamming_permutations(cfg.num_permutations)))
        self.register_buffer("permutations", perms, persistent=False)
        self.backbone = make_backbone(cfg.backbone, (c, self.tile, self.tile))
        self.head = mlp_head(9 * self.backbone.out_dim, cfg.head_hidden, cfg.num_permutations)

    def grid(self, x, jitter, generator=None):
        return normalise_tiles(jigsaw_tiles(x, self.cell, self.tile, jitter, generator))

    def loss(self, batch, step):
        shuffled, labels = shuffle_tiles(self.grid(batch["x"], jitter=True), self.permutations)
        logits = self.head(self.patch_features(shuffled).flatten(1))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy(logits, labels)}
