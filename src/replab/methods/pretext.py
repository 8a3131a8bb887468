"""What the image pretext tasks share: a backbone, a head that solves the task, and patch grids.

The tasks of the lecture's third pillar turn unlabeled images into a classification problem;
each has its own file (``rotation``, ``context``, ``jigsaw``, ``colorization``) with its paper's
settings. All share one shape: a backbone from ``replab.nn.backbones`` (``model.backbone``) and
a head that solves the pretext task. The head is never part of the representation: ``encode`` is
the backbone's pooled output, on the whole image (``rotation``), on its lightness
(``colorization``), or, for the two patch tasks, on a fixed 3x3 grid of patches
(:class:`GridPretext`).
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from replab.config import ConfigError
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Images


def mlp_head(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """The pretext classifier: linear, or one ReLU hidden layer when ``hidden`` > 0."""
    if hidden == 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


class PretextMethod(Method, Encoder):
    """Backbone + classifier head on square images; ``encode`` is the backbone's pooled output."""

    accepts = Images(square=True)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.shape = tuple(info.shape)

    def encode(self, x):
        return self.backbone(x)


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


def uniform_ints(low, high, shape, device, generator=None) -> torch.Tensor:
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

    @classmethod
    @abstractmethod
    def geometry(cls, size: int, cfg) -> tuple[int, ...]:
        """The task's patch geometry in pixels for ``size`` x ``size`` inputs; ConfigError
        ("NAME: why") when the settings ask for more than the image holds."""

    @classmethod
    def data_problem(cls, info, cfg):
        """Square images with room for the patches the settings ask for."""
        problem = super().data_problem(info, cfg)
        if problem is None:
            try:
                cls.geometry(info.shape[-1], cfg)
            except ConfigError as e:
                return str(e).removeprefix(f"{cls.registry_name}: ")
        return problem

    @abstractmethod
    def grid(self, x: torch.Tensor, jitter: bool, generator=None) -> torch.Tensor:
        """The 9 patches of each image [B, 9, C, P, P] (random offsets when ``jitter``)."""

    def patch_features(self, patches: torch.Tensor) -> torch.Tensor:
        """[B, K, C, P, P] -> backbone features [B, K, dim] (one pass over all patches)."""
        b, k = patches.shape[:2]
        return self.backbone(patches.flatten(0, 1)).view(b, k, -1)

    def encode(self, x):
        return self.patch_features(self.grid(x, jitter=False)).flatten(1)
