"""What every method is: an ``nn.Module`` with ``loss(batch, step)``, built for one kind of data.

The training loop calls the module (``forward`` is ``loss``) so that DDP sees the forward pass.
A method declares the data it takes (``accepts``, checked before anything is built) and, among
its bases, the interfaces it offers (``methods.capabilities``: ``Encoder`` for a representation,
``Decoder``, ``Sampler``, ``LatentKL``, ``TokenVectors``); the evaluation protocol reads only
those. It publishes its optimiser settings in ``train_defaults`` and its hyper-parameters, with
the paper's defaults, in a nested ``Config`` dataclass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods.inputs import Requirement

NoiseSource = Callable[[torch.Tensor], torch.Tensor]


class Method(nn.Module):
    registry_name: ClassVar[str]
    Config: ClassVar[type]
    accepts: ClassVar[Requirement]
    train_defaults: ClassVar[dict] = {}
    # The run's ``train.seed``, set by the training loop before the first step: a method that
    # draws its own randomness (augmentations) seeds it from (seed, step), so resuming is exact.
    seed: int = 0
    # The run's ``train.steps``, set with ``seed``: for schedules a method runs itself (a
    # momentum encoder's tau).
    total_steps: int = 0
    # True when the loss draws all its randomness through ``draw_normal``: then ``replab train
    # --seeds`` can run many seeds of it in one batched step, each with its own noise.
    batched_seeds: ClassVar[bool] = False
    # True when some steps leave some parameters without a gradient (a loss in stages, as
    # darla's DAE first and its VAE after): DDP then searches the graph for them every step.
    idle_parameters: ClassVar[bool] = False
    _noise: NoiseSource | None = None  # the noise of the forward pass running now, if given

    def __init__(self, cfg, info: DataInfo):
        super().__init__()
        problem = type(self).data_problem(info, cfg)
        if problem is not None:
            raise ConfigError(f"data: {self.registry_name} {problem}")
        self.cfg = cfg
        self.info = info

    @classmethod
    def data_problem(cls, info: DataInfo, cfg) -> str | None:
        """Why this method with settings ``cfg`` cannot train on data of this ``info`` (one
        line), or None. The declared ``accepts``; methods whose settings narrow it extend this."""
        return cls.accepts.problem(info)

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
        """Standard normal noise shaped like ``like`` (the reparameterisation's epsilon):
        ``torch.randn_like``, or what the ``noise`` given to this forward pass hands out (the
        many-seeds trainer gives each seed the noise its single run would draw)."""
        if self._noise is not None:
            return self._noise(like)
        return torch.randn_like(like)

    def forward(
        self, batch: dict[str, torch.Tensor], step: int = 0, noise: NoiseSource | None = None
    ) -> dict[str, torch.Tensor]:
        previous, self._noise = self._noise, noise
        try:
            return self.loss(batch, step)
        finally:
            self._noise = previous

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class SelfUpdating(ABC):
    """A method that may train by its own update rule instead of handing the gradient of
    ``loss`` to the loop's optimisers: word2vec's per-pair SGD, where each pair's update
    changes the vectors the next pair reads, which no gradient of a whole batch reproduces.
    When :meth:`updates_itself` says so, the loop calls :meth:`update` without autograd and
    builds no optimiser state; the schedule (``train.schedule``, ``warmup_steps``,
    ``min_lr_ratio``) still sets the rate, through ``lr_scale``."""

    def updates_itself(self) -> bool:
        """Whether this model, with its settings and on its device, trains by :meth:`update`
        (a ConfigError if its settings ask for a rule this device cannot run)."""
        return True

    @abstractmethod
    def update(
        self, batch: dict[str, torch.Tensor], step: int, lr_scale: float
    ) -> dict[str, torch.Tensor]:
        """One training step at ``lr_scale`` times the method's peak rate; ``{"loss": ...}``
        and other scalars to log, as ``loss`` returns."""
