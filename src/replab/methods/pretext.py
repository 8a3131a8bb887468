"""Self-supervised pretext tasks: turn unlabeled images into a classification problem.

Four tasks from the lecture's third pillar, each a registry entry with its paper's settings:

- ``rotation`` (Gidaris et al. 2018): which of 0/90/180/270 degrees was an image turned by?
  Every image of the batch is shown in all four rotations, as in the paper.
- ``context`` (Doersch et al. 2015): where is a patch relative to the centre patch (8-way)?
- ``jigsaw`` (Noroozi and Favaro 2016): which of a fixed set of maximally distant permutations
  shuffled a 3x3 grid of tiles?
- ``colorization`` (Zhang et al. 2016): which quantised ab colour does each pixel have, given
  only the lightness, with the paper's class rebalancing?

All share one shape: a backbone from ``replab.nn.backbones`` (``model.backbone``) and a head that
solves the pretext task. The head is never part of the representation: ``encode`` is the
backbone's pooled output, on the whole image (``rotation``), on its lightness
(``colorization``), or, for the two patch tasks, on a fixed 3x3 grid of patches (see
``GridPretext``).
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from replab.config import ConfigError, param
from replab.methods.base import Method
from replab.nn.backbones import BACKBONES, make_backbone
from replab.nn.conv import conv_sizes
from replab.nn.views import Views, step_generator
from replab.registry import register_method
from replab.train import distributed as dist


def _square_image_shape(info, method: str) -> tuple[int, int, int]:
    """The [C, S, S] shape every task here needs, or a one-line ConfigError."""
    shape = tuple(info.shape)
    if info.kind != "image" or len(shape) != 3:
        raise ConfigError(f"{method} needs images [C, H, W], got {info.kind} of shape {shape}")
    if shape[1] != shape[2]:
        raise ConfigError(f"{method} needs square images, got {shape[1]}x{shape[2]}")
    return shape


def _mlp_head(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """The pretext classifier: linear, or one ReLU hidden layer when ``hidden`` > 0."""
    if hidden == 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


class PretextMethod(Method):
    """Backbone + classifier head; ``encode`` is the backbone's pooled output."""

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.shape = _square_image_shape(info, type(self).registry_name)

    def encode(self, x):
        return self.backbone(x)


# ----------------------------------------------------------------------------------------------
# rotation


def rotate90(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` turned counter-clockwise by ``k`` quarter turns on screen (rows down, columns right),
    the same as ``torch.rot90(x, k, dims=(-2, -1))``."""
    k %= 4
    if k == 1:
        return x.transpose(-2, -1).flip(-2)
    if k == 2:
        return x.flip(-2).flip(-1)
    if k == 3:
        return x.transpose(-2, -1).flip(-1)
    return x


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, as the paper trains: ([4B, C, S, S], labels [4B]),
    label k meaning ``k`` counter-clockwise quarter turns (0, 90, 180, 270 degrees)."""
    turned = torch.cat([rotate90(x, k) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return turned, labels


@dataclass
class RotationConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    head_hidden: int = param(256, min=0, help="hidden units of the rotation classifier (0: linear)")
    crop_min: float = param(
        1.0, min=0.01, max=1.0, help="smallest random-resized-crop area before rotating (1: none)"
    )
    flip_p: float = param(0.0, min=0.0, max=1.0, help="chance of a horizontal flip before rotating")


@register_method("rotation", pillar="pretext")
class Rotation(PretextMethod):
    """RotNet (Gidaris et al. 2018): predict the rotation (0/90/180/270 degrees) of an image.

    loss = -1/(4B) sum_i sum_k log softmax(head(f(rot_k(x_i))))_k over the 4 rotations of each
    of the B images.

    Optionally each image is first cropped (random resized crop, area in [crop_min, 1]) and
    flipped; RotNet's own code trains on crops and flips too (padded 32-px crops on CIFAR,
    random-sized crops on ImageNet). The rotation label is that of the augmented image. Off by
    default. Why it is there: on the 1,797 8x8 digits the bare task is solved (over 98% within
    400 steps) and the features then tie with raw pixels, while ``crop_min=0.4 flip_p=0.5``
    keeps it hard enough (87% at the end) to beat them (README, "what to expect").
    """

    Config = RotationConfig
    # Gidaris et al. (CIFAR-10): SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.1 (the
    # paper drops it in steps; replab decays it with its cosine schedule). Batch counts images;
    # the network sees 4x as many inputs.
    train_defaults = {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 128,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.backbone = make_backbone(cfg.backbone, self.shape)
        self.head = _mlp_head(self.backbone.out_dim, cfg.head_hidden, 4)
        self.views = None  # crop and flip only: the colour of the image is not the task's business
        if cfg.crop_min < 1.0 or cfg.flip_p > 0.0:
            self.views = Views(
                crop_scale=(cfg.crop_min, 1.0), flip_p=cfg.flip_p, jitter_p=0.0, gray_p=0.0
            )

    def loss(self, batch, step):
        x = batch["x"]
        if self.views is not None:  # a pure function of (seed, step), as SimCLR's views
            shard = (dist.rank(), dist.world_size())
            x = self.views(x, step_generator(self.seed, step), shard=shard)
        x, labels = rotation_batch(x)
        logits = self.head(self.backbone(x))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": _accuracy(logits, labels)}


# ----------------------------------------------------------------------------------------------
# patch grids (context, jigsaw)


def take_patches(x: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, size: int):
    """Square patches of side ``size`` with top-left corners ``tops``/``lefts`` [B, K]:
    [B, K, C, size, size]."""
    ar = torch.arange(size, device=x.device)
    rows = (tops[..., None] + ar)[..., :, None]  # [B, K, size, 1]
    cols = (lefts[..., None] + ar)[..., None, :]  # [B, K, 1, size]
    b = torch.arange(len(x), device=x.device)[:, None, None, None]
    # advanced indices around a slice: the broadcast dims come first -> [B, K, s, s, C]
    return x[b, :, rows, cols].permute(0, 1, 4, 2, 3)


def _uniform_ints(low, high, shape, device, generator=None) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive), ``low`` broadcastable to ``shape``."""
    span = torch.as_tensor(high - low + 1, device=device)
    u = torch.rand(shape, device=device, generator=generator)
    return low + (u * span).long().clamp(max=span - 1)


class GridPretext(PretextMethod):
    """A task on a 3x3 grid of patches. The backbone is built for one patch, and the
    representation of a whole image is the backbone's features of its 9 patches at the training
    layout (no jitter, grid centred), concatenated in raster order: [B, 9 * dim].

    Why patches and not the full image: the conv backbone ends in a dense layer sized to its
    input, so one set of weights cannot take both; and the features the task trains are those of
    patches, so encoding the same patches keeps the representation on the inputs it was trained
    on, while concatenating (not averaging) keeps where each part of the image is, which shapes
    and digits need. The random-encoder baseline goes through the same grid.
    """

    @abstractmethod
    def grid(self, x: torch.Tensor, jitter: bool, generator=None) -> torch.Tensor:
        """The 9 patches of each image [B, 9, C, P, P] (random offsets when ``jitter``)."""

    def patch_features(self, patches: torch.Tensor) -> torch.Tensor:
        """[B, K, C, P, P] -> backbone features [B, K, dim] (one pass over all patches)."""
        b, k = patches.shape[:2]
        return self.backbone(patches.flatten(0, 1)).view(b, k, -1)

    def encode(self, x):
        return self.patch_features(self.grid(x, jitter=False)).flatten(1)


# context ---------------------------------------------------------------------------------------

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
        origin = _uniform_ints(jitter, size - footprint - jitter, (b, 2, 1), x.device, generator)
        shift = _uniform_ints(-jitter, jitter, (b, 2, 9), x.device, generator)
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

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, size, _ = self.shape
        self.patch, self.gap, self.jitter = context_geometry(
            size, cfg.patch_size, cfg.gap, cfg.jitter
        )
        self.backbone = make_backbone(cfg.backbone, (c, self.patch, self.patch))
        self.head = _mlp_head(2 * self.backbone.out_dim, cfg.head_hidden, 8)

    def grid(self, x, jitter, generator=None):
        return context_grid(x, self.patch, self.gap, self.jitter, jitter, generator)

    def loss(self, batch, step):
        feats = self.patch_features(self.grid(batch["x"], jitter=True))
        centre, neighbour, labels = context_pairs(feats)
        logits = self.head(torch.cat([centre, neighbour], 1))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": _accuracy(logits, labels)}


# jigsaw ----------------------------------------------------------------------------------------


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
        off = _uniform_ints(0, cell - tile, (b, 2, 9), x.device, generator)
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

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, size, _ = self.shape
        self.cell, self.tile = jigsaw_geometry(size, cfg.tile_size)
        perms = torch.as_tensor(np.array(maximal_hamming_permutations(cfg.num_permutations)))
        self.register_buffer("permutations", perms, persistent=False)
        self.backbone = make_backbone(cfg.backbone, (c, self.tile, self.tile))
        self.head = _mlp_head(9 * self.backbone.out_dim, cfg.head_hidden, cfg.num_permutations)

    def grid(self, x, jitter, generator=None):
        return normalise_tiles(jigsaw_tiles(x, self.cell, self.tile, jitter, generator))

    def loss(self, batch, step):
        shuffled, labels = shuffle_tiles(self.grid(batch["x"], jitter=True), self.permutations)
        logits = self.head(self.patch_features(shuffled).flatten(1))
        return {"loss": F.cross_entropy(logits, labels), "accuracy": _accuracy(logits, labels)}


# ----------------------------------------------------------------------------------------------
# colorization

# sRGB (D65) -> XYZ, and the D65 white point: the CIE / IEC 61966-2-1 constants.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
AB_BIN = 10.0  # Zhang et al.: ab space in cells of 10 x 10


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] [..., 3, H, W] -> CIE L*a*b* (D65) [..., 3, H, W], L in [0, 100].

    Undo the sRGB curve (linear below 0.04045, ((c + 0.055) / 1.055)^2.4 above), map to XYZ,
    divide by the white point, and L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)),
    b = 200 (f(Y) - f(Z)) with f(t) = t^(1/3) above (6/29)^3, t / (3 (6/29)^2) + 4/29 below.
    """
    dtype = rgb.dtype if rgb.dtype == torch.float64 else torch.float32
    with torch.autocast(rgb.device.type, enabled=False):  # bf16 would cost ~1 unit of L
        c = rgb.to(dtype).clamp(0.0, 1.0)
        lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        m = (_RGB_TO_XYZ / _D65_WHITE[:, None]).to(rgb.device, dtype)
        xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
        d = 6.0 / 29.0
        cube = xyz.clamp(min=d**3) ** (1.0 / 3.0)
        f = torch.where(xyz > d**3, cube, xyz / (3 * d * d) + 4.0 / 29.0)
        fx, fy, fz = f.unbind(-3)
        return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


@functools.lru_cache(maxsize=1)
def in_gamut_ab_bins() -> torch.Tensor:
    """Centres [Q, 2] of the 10 x 10 ab cells that some sRGB colour falls in (Q = 262).

    The ab extent of the gamut is that of the RGB cube's surface (a line of constant ab through
    the solid enters and leaves it through the surface), so a dense grid on the six faces finds
    every cell. Zhang et al. count Q = 313 from their own gamut estimate; the cells here are
    exactly those an sRGB image can produce.
    """
    n = 512
    g = torch.linspace(0.0, 1.0, n)
    u, v = (t.flatten() for t in torch.meshgrid(g, g, indexing="ij"))
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            cols = [u, v]
            cols.insert(axis, torch.full_like(u, value))
            faces.append(torch.stack(cols))
    lab = rgb_to_lab(torch.cat(faces, 1)[..., None])  # [3, points, 1]
    cells = torch.round(lab[1:, :, 0] / AB_BIN).long()  # [2, points]
    lo = int(cells.min())
    span = int(cells.max()) - lo + 1
    flat = (cells[0] - lo) * span + (cells[1] - lo)
    occupied = torch.nonzero(torch.bincount(flat, minlength=span * span)).flatten()
    centres = torch.stack([occupied // span + lo, occupied % span + lo], 1)
    return centres.float() * AB_BIN


def smooth_prior(prior: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """The bin distribution convolved with a Gaussian of ``sigma`` ab units over the bin centres
    and renormalised: p~_q = sum_r p_r exp(-|c_q - c_r|^2 / (2 sigma^2)) / Z."""
    if sigma <= 0:
        return prior / prior.sum()
    d2 = torch.cdist(centres.double(), centres.double()).pow(2)
    smoothed = torch.exp(-d2 / (2 * sigma**2)) @ prior.double()
    return (smoothed / smoothed.sum()).to(prior.dtype)


def rebalance_weights(smoothed_prior: torch.Tensor, lam: float) -> torch.Tensor:
    """Zhang et al.'s class weights: w ∝ ((1 - lam) p~ + lam / Q)^-1, scaled so that
    E_p~[w] = sum_q p~_q w_q = 1 (rare colours weigh more, the mean weight stays 1)."""
    q = len(smoothed_prior)
    w = 1.0 / ((1.0 - lam) * smoothed_prior + lam / q)
    return w / (smoothed_prior * w).sum()


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, k: int, sigma: float):
    """Zhang et al.'s soft targets: each ab value [N, 2] spread over its ``k`` nearest bins with
    Gaussian weights exp(-d^2 / (2 sigma^2)), normalised. Returns (bins [N, k], weights [N, k]),
    nearest first."""
    d2 = torch.cdist(ab, centres).pow(2)
    near_d2, bins = d2.topk(k, dim=1, largest=False)
    weights = torch.softmax(-near_d2 / (2 * sigma**2), dim=1)
    return bins, weights


class ColorHead(nn.Module):
    """Pooled features [B, dim] -> per-pixel bin logits [B, Q, h, w]: a dense layer to a small
    map, then 4x4 stride-2 transposed convolutions up to h (the shape of ``nn.conv``'s decoder)."""

    def __init__(self, in_dim: int, out_size: int, num_bins: int, width: int = 64):
        super().__init__()
        sizes = conv_sizes(out_size)
        self.start = (width, sizes[-1], sizes[-1])
        self.fc = nn.Sequential(nn.Linear(in_dim, width * sizes[-1] ** 2), nn.ReLU())
        layers, size = [], sizes[-1]
        for target in sizes[::-1][1:]:
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1, output_padding=target - 2 * size)]
            layers.append(nn.ReLU())
            size = target
        layers.append(nn.Conv2d(width, num_bins, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(self.fc(h).view(-1, *self.start))


@dataclass
class ColorizationConfig:
    backbone: str = param("conv", choices=list(BACKBONES))
    out_stride: int = param(4, min=1, help="predict colours at 1/out_stride resolution (paper: 4)")
    sigma: float = param(5.0, min=0.0, help="Gaussian of the soft targets and prior smoothing")
    neighbours: int = param(5, min=1, help="bins each soft target is spread over (paper: 5)")
    rebalance_lambda: float = param(
        0.5, min=0.0, max=1.0, help="weight of the uniform in the rebalancing mix (paper: 0.5)"
    )


@register_method("colorization", pillar="pretext")
class Colorization(PretextMethod):
    """Colorization (Zhang et al. 2016): predict each pixel's quantised ab colour from lightness.

    loss = -mean_{i,hw} v(Z_hw) sum_q Z_hwq log softmax(head(f(L_i)))_hwq, Z the soft-encoded
    ab targets (at 1/out_stride resolution) and v(Z) = w_{argmax Z} the rebalancing weight of
    the nearest bin. The prior p behind w is the bin frequency of every training target seen so
    far (a buffer, saved with the model): the paper uses its training set's, which a stream of
    batches estimates without a pass over the data first. ``encode`` sees the lightness only,
    (L - 50) / 100, as the network does.
    """

    Config = ColorizationConfig
    # Zhang et al.: Adam, beta1 0.9, beta2 0.99, weight decay 1e-3, lr 3e-5, batch 40.
    train_defaults = {
        "optimizer": "adam",
        "lr": 3e-5,
        "betas": [0.9, 0.99],
        "weight_decay": 1e-3,
        "batch_size": 40,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, size, _ = self.shape
        if c != 3:
            raise ConfigError(
                f"colorization needs colour images (3 channels, RGB); the data has {c} "
                f"channel{'s' if c != 1 else ''} (shape {self.shape})"
            )
        centres = in_gamut_ab_bins()
        if cfg.neighbours > len(centres):
            raise ConfigError(f"model.neighbours: must be <= {len(centres)}")
        self.register_buffer("bin_centres", centres.clone(), persistent=False)
        # float32, not 64: MPS has no float64; the prior needs no more precision than that
        self.register_buffer("bin_counts", torch.zeros(len(centres)))
        self.out_size = max(1, size // cfg.out_stride)
        self.backbone = make_backbone(cfg.backbone, (1, size, size))
        self.head = ColorHead(self.backbone.out_dim, self.out_size, len(centres))

    @staticmethod
    def lightness_input(lab: torch.Tensor) -> torch.Tensor:
        return (lab[:, :1] - 50.0) / 100.0

    def encode(self, x):
        return self.backbone(self.lightness_input(rgb_to_lab(x)))

    def class_weights(self) -> torch.Tensor:
        counts = self.bin_counts
        if counts.sum() == 0:
            return torch.ones_like(counts, dtype=torch.float32)
        smoothed = smooth_prior(counts / counts.sum(), self.bin_centres, self.cfg.sigma)
        return rebalance_weights(smoothed, self.cfg.rebalance_lambda).float()

    def loss(self, batch, step):
        lab = rgb_to_lab(batch["x"])
        with torch.autocast(lab.device.type, enabled=False):
            ab = F.adaptive_avg_pool2d(lab[:, 1:], self.out_size)  # [B, 2, h, w]
            ab = ab.permute(0, 2, 3, 1).reshape(-1, 2)
            sigma = max(self.cfg.sigma, 1e-3)  # sigma 0: all weight on the nearest bin
            bins, soft = soft_encode(ab, self.bin_centres, self.cfg.neighbours, sigma)
        if self.training:
            with torch.no_grad():
                self.bin_counts += torch.bincount(bins[:, 0], minlength=len(self.bin_counts))
        logits = self.head(self.backbone(self.lightness_input(lab)))
        logp = F.log_softmax(logits.float(), 1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        ce = -(soft * logp.gather(1, bins)).sum(1)
        v = self.class_weights()[bins[:, 0]]
        return {
            "loss": (v * ce).mean(),
            "cross_entropy": ce.mean(),
            "accuracy": (logp.argmax(1) == bins[:, 0]).float().mean(),
        }
