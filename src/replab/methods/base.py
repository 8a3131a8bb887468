"""What every method is: an ``nn.Module`` with ``loss(batch, step)`` and ``encode(x)``.

The training loop calls the module (``forward`` is ``loss``) so that DDP sees the forward pass,
and the evaluation protocol only ever calls ``encode(x) -> [batch, dim]``. A model that learns no
representation (a plain GAN) simply has no ``encode``, and the protocol refuses it. Methods with
a decoder add ``decode``, ``reconstruct`` and ``sample``. A method publishes its optimiser
settings in ``train_defaults`` and its hyper-parameters, with the paper's defaults, in a nested
``Config`` dataclass.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from replab.data.base import DataInfo


class Method(nn.Module):
    registry_name: ClassVar[str]
    Config: ClassVar[type]
    train_defaults: ClassVar[dict] = {}
    # The run's ``train.seed``, set by the training loop before the first step: a method that
    # draws its own randomness (augmentations) seeds it from (seed, step), so resuming is exact.
    seed: int = 0
    # True when the loss draws all its randomness through ``draw_normal``: then ``replab train
    # --seeds`` can run many seeds of it in one batched step and replay each seed's own noise.
    batched_seeds: ClassVar[bool] = False
    _noise_source = None  # set only by the many-seeds trainer (``train.seeds``)

    def __init__(self, cfg, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """``{"loss": scalar, ...}``; the other scalars are logged."""

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimiser. One group, ``"main"``, minimised on ``"loss"``, unless a
        method trains a second player (a discriminator): then group ``NAME`` is minimised on the
        loss's ``"loss_NAME"`` entry with its own optimiser, both from the same forward pass,
        as disentanglement_lib's FactorVAE does. ``group_train_overrides[NAME]`` may change
        that optimiser's settings (e.g. ``{"betas": [0.5, 0.9]}``)."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}

    group_train_overrides: ClassVar[dict[str, dict]] = {}

    def accepts_shape(self, shape) -> bool:
        """Whether ``encode`` takes inputs of this per-example shape (the protocol checks it):
        the training data's by default; a video model also encodes single frames."""
        return tuple(shape) == tuple(self.info.shape)

    def draw_normal(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like ``like`` (the reparameterisation's epsilon).

        In a single run this is ``torch.randn_like``; under ``--seeds`` it hands out the noise
        the seed's own generator drew, so each seed gets what its single run would have."""
        if self._noise_source is not None:
            return self._noise_source(like)
        return torch.randn_like(like)

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        return self.loss(batch, step)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
