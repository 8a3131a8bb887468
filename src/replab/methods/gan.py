"""Adversarial generative models: ``bigan``, which learns inference, and ``gan``, which does not.

- ``bigan`` (Donahue, Kraehenbuehl and Darrell, 2017; BigBiGAN's joint discriminator, Donahue and
  Simonyan, 2019, at small scale): an encoder E, a generator G and a discriminator that tells
  encoder pairs (x, E(x)) from generator pairs (G(z), z). At the game's optimum E inverts G, with
  no reconstruction loss anywhere: ``reconstruct(x) = G(E(x))`` keeps what the discriminator can
  see (the digit, the shape), not the pixels. ``encode`` is E.
- ``gan`` (Goodfellow et al., 2014): the same G, and the same discriminator on x alone. It
  generates but has no encoder, so it has no ``encode`` and the evaluation protocol refuses it.

The discriminator follows BigBiGAN: features F(x) and H(z), a joint head s_xz = J(F(x), H(z))
and, by default, the unary heads s_x = w_x . F(x) and s_z = w_z . H(z); its loss is the sum of
the per-head losses. Spectral normalisation (Miyato et al., 2018) on every layer of the
discriminator keeps it Lipschitz and the game stable. Both players train from one forward pass:
the E+G group ("main") minimises ``loss``, the discriminator minimises ``loss_discriminator``.

E's output is batch-normalised without affine parameters (``latent_norm``, replab's choice): a
fresh E maps every x to nearly the same z, and with the batch's mean and variance pinned to the
prior's the discriminator cannot win on those moments, only on how z goes with x, which is what
teaches E to encode. The MLP E and G have DCGAN's batch-normalised ReLU hidden layers
(``batch_norm``; the conv ones are the foundation's pair, without). Each of the two lifts the
few-label probe of E(x) above a random E's on digits (the README's "what to expect").

Mode collapse is watched every step: ``diversity`` is the mean pairwise distance of a batch of
G's samples over that of the real batch (about 1 for a healthy generator, near 0 when G maps
every z to nearly one image); :func:`is_collapsed` turns it into a verdict. A generator at its
random initialisation also draws nearly one image (diversity 0.001 to 0.15 here), so the verdict
means something once training is under way.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from replab.config import ConfigError, param
from replab.methods.base import Method
from replab.methods.capabilities import Decoder, Encoder, Sampler
from replab.methods.inputs import Images
from replab.nn.conv import (
    DSPRITES_CHANNELS,
    architecture_problem,
    conv_sizes,
    make_encoder_decoder,
    pick_architecture,
)
from replab.registry import register_method

COLLAPSE_THRESHOLD = 0.1  # diversity below this: the generator has collapsed


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over all pairs i < j of the rows of ``x`` (flattened)."""
    flat = x.detach().flatten(1).float()
    n = len(flat)
    if n < 2:
        return torch.zeros((), device=x.device)
    d = torch.cdist(flat, flat)
    return d.sum() / (n * (n - 1))


def diversity(samples: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean pairwise distance of generated ``samples`` relative to that of ``real`` data."""
    return mean_pairwise_distance(samples) / mean_pairwise_distance(real).clamp_min(1e-12)


def is_collapsed(
    samples: torch.Tensor, real: torch.Tensor, threshold: float = COLLAPSE_THRESHOLD
) -> bool:
    """True when the samples are far less spread than real data (a collapse to one output)."""
    return bool(diversity(samples, real) < threshold)


def adversarial_losses(
    real: list[torch.Tensor], fake: list[torch.Tensor], kind: str, real_side: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator-side loss L_G, discriminator loss L_D), summed over the heads k, each term
    averaged over the batch; ``real`` holds the scores s_k of the data (BiGAN: encoder) side,
    ``fake`` those of the generator side.

    hinge (Lim and Ye; BigBiGAN):  L_D = sum_k E_real[relu(1 - s_k)] + E_fake[relu(1 + s_k)],
                                   L_G = sum_k E_real[s_k] - E_fake[s_k];
    non_saturating (Goodfellow):   L_D = sum_k E_real[softplus(-s_k)] + E_fake[softplus(s_k)],
                                   L_G = sum_k E_real[softplus(s_k)] + E_fake[softplus(-s_k)].

    ``real_side=False`` (a plain GAN, whose real scores do not depend on its generator) drops
    the E_real terms of L_G: hinge L_G = -E_fake[s], non-saturating E_fake[softplus(-s)].
    """
    pairs = list(zip(real, fake, strict=True))
    if kind == "hinge":
        d = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in pairs)
        g = sum((r.mean() if real_side else 0.0) - f.mean() for r, f in pairs)
    elif kind == "non_saturating":
        d = sum(F.softplus(-r).mean() + F.softplus(f).mean() for r, f in pairs)
        g = sum(
            (F.softplus(r).mean() if real_side else 0.0) + F.softplus(-f).mean() for r, f in pairs
        )
    else:
        raise ValueError(f"unknown adversarial loss {kind!r}; choose hinge or non_saturating")
    return g, d


@dataclass
class GANConfig:
    latent_dim: int = param(50, min=1, help="z size (Donahue et al., MNIST: 50)")
    architecture: str = param("auto", choices=["auto", "conv", "mlp"], help="auto: conv >= 16px")
    hidden: int = param(1024, min=1, help="MLP width of E, G and D (Donahue et al., MNIST: 1024)")
    loss: str = param("hinge", choices=["hinge", "non_saturating"], help="BigBiGAN: hinge")
    spectral_norm: bool = param(True, help="on every discriminator layer (Miyato et al.)")
    leak: float = param(0.2, min=0.0, max=1.0, help="LeakyReLU slope in the discriminator")
    batch_norm: bool = param(True, help="MLP E and G: batch norm + ReLU hidden layers (DCGAN)")


@dataclass
class BiGANConfig(GANConfig):
    unary_scores: bool = param(True, help="BigBiGAN's s_x and s_z heads beside the joint s_xz")
    latent_norm: bool = param(True, help="batch-normalise E(x) (no affine): prior-like moments")


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


class XFeatures(nn.Module):
    """F(x): the discriminator's image branch -> [B, hidden] (LeakyReLU, spectral norm)."""

    def __init__(self, shape, arch: str, hidden: int, sn: bool, leak: float):
        super().__init__()
        c, h, w = shape
        if arch == "conv":
            sizes = conv_sizes(h, len(DSPRITES_CHANNELS))
            layers, prev = [], c
            for ch in DSPRITES_CHANNELS[: len(sizes) - 1]:
                layers += [_sn(nn.Conv2d(prev, ch, 4, 2, 1), sn), nn.LeakyReLU(leak)]
                prev = ch
            flat = prev * sizes[-1] * sizes[-1]
            layers += [nn.Flatten(), _sn(nn.Linear(flat, hidden), sn), nn.LeakyReLU(leak)]
        else:
            layers = [nn.Flatten(), _sn(nn.Linear(c * h * w, hidden), sn), nn.LeakyReLU(leak)]
            layers += [_sn(nn.Linear(hidden, hidden), sn), nn.LeakyReLU(leak)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def _mlp(sizes, sn: bool, leak: float, last_linear: bool = True) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(_sn(nn.Linear(a, b), sn))
        if i < len(sizes) - 2 or not last_linear:
            layers.append(nn.LeakyReLU(leak))
    return nn.Sequential(*layers)


def _bn_mlp(sizes, flatten: bool = False) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU per layer: DCGAN's hidden layers, as an MLP."""
    layers = [nn.Flatten()] if flatten else []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers)


class AdversarialBase(Method, Sampler):
    """Shared: the generator G (z ~ N(0, I) -> image in [0, 1]) and the two optimisers."""

    accepts = Images()

    # DCGAN's Adam settings (Radford et al.), which Donahue et al. use: lr 2e-4, beta1 0.5
    train_defaults = {
        "optimizer": "adam",
        "lr": 2e-4,
        "betas": [0.5, 0.999],
        "batch_size": 128,
        "schedule": "constant",
        "grad_clip": 0.0,
    }
    group_train_overrides = {"discriminator": {"betas": [0.5, 0.999], "weight_decay": 0.0}}

    @classmethod
    def data_problem(cls, info, cfg):
        return super().data_problem(info, cfg) or architecture_problem(cfg.architecture, info.shape)

    def __init__(self, cfg: GANConfig, info):
        super().__init__(cfg, info)
        shape = tuple(info.shape)
        arch = self.arch = pick_architecture(cfg.architecture, shape)
        # the foundation's conv or MLP pair: the encoder's features (kept by BiGAN only) and G,
        # whose output is logits; built by both methods so that G starts the same for a seed
        if arch == "mlp" and cfg.batch_norm:
            features = _bn_mlp([math.prod(shape), cfg.hidden, cfg.hidden], flatten=True)
            features.out_dim = cfg.hidden
            self.generator = nn.Sequential(
                _bn_mlp([cfg.latent_dim, cfg.hidden, cfg.hidden]),
                nn.Linear(cfg.hidden, math.prod(shape)),
                nn.Unflatten(1, shape),
            )
        else:
            features, self.generator = make_encoder_decoder(
                arch, shape, cfg.latent_dim, mlp_hidden=(cfg.hidden, cfg.hidden)
            )
        self.x_features = XFeatures(shape, arch, cfg.hidden, cfg.spectral_norm, cfg.leak)
        self.build_players(cfg, features)

    @abstractmethod
    def build_players(self, cfg, encoder_features: nn.Module) -> None:
        """Build what the method adds to G and F(x): BiGAN's encoder and heads, GAN's head."""

    def uses_batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    def check_batch(self, n: int) -> None:
        if self.training and n < 2 and self.uses_batch_norm():
            raise ConfigError(
                "train.batch_size: batch norm in E or G (model.batch_norm, model.latent_norm) "
                f"needs batches of at least 2 per process, got {n}"
            )

    def prior(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): images in [0, 1]."""
        return torch.sigmoid(self.generator(z))

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.prior(n))

    @abstractmethod
    def discriminator_parameters(self) -> list[nn.Parameter]:
        """The discriminator's parameters: its own optimiser minimises ``loss_discriminator``."""

    def param_groups(self):
        disc = {id(p) for p in self.discriminator_parameters()}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in disc]
        return {"main": main, "discriminator": self.discriminator_parameters()}


@register_method("bigan", pillar="generative")
class BiGAN(AdversarialBase, Encoder, Decoder):
    """BiGAN (Donahue et al.): inference learned adversarially from joint (x, z) pairs."""

    Config = BiGANConfig

    def build_players(self, cfg, encoder_features):
        h, sn, leak = cfg.hidden, cfg.spectral_norm, cfg.leak
        layers = [encoder_features, nn.Linear(encoder_features.out_dim, cfg.latent_dim)]
        if cfg.latent_norm:
            # E(x) starts nearly constant; with its batch mean and variance fixed to the prior's
            # (0, 1) the discriminator cannot win on those moments, only on how z goes with x
            layers.append(nn.BatchNorm1d(cfg.latent_dim, affine=False))
        self.encoder = nn.Sequential(*layers)
        self.z_features = _mlp([cfg.latent_dim, h, h], sn, leak, last_linear=False)
        self.joint = _mlp([2 * h, h, 1], sn, leak)
        if cfg.unary_scores:
            self.x_score = _sn(nn.Linear(h, 1), sn)
            self.z_score = _sn(nn.Linear(h, 1), sn)

    def discriminator_parameters(self):
        mods = [self.x_features, self.z_features, self.joint]
        if self.cfg.unary_scores:
            mods += [self.x_score, self.z_score]
        return [p for m in mods for p in m.parameters()]

    def discriminate(self, x: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
        """Scores of pairs (x, z), one [B] tensor per head: [s_xz] or [s_xz, s_x, s_z]."""
        fx, hz = self.x_features(x), self.z_features(z)
        scores = [self.joint(torch.cat([fx, hz], 1)).squeeze(1)]
        if self.cfg.unary_scores:
            scores += [self.x_score(fx).squeeze(1), self.z_score(hz).squeeze(1)]
        return scores

    def loss(self, batch, step):
        """Encoder pairs (x, E(x)) are "real", generator pairs (G(z), z) "fake"; both kinds go
        through the discriminator in one batch. See :func:`adversarial_losses`."""
        x = batch["x"]
        n = len(x)
        self.check_batch(n)
        z_real = self.encode(x)
        z_fake = self.prior(n)
        x_fake = self.decode(z_fake)
        scores = self.discriminate(torch.cat([x, x_fake]), torch.cat([z_real, z_fake]))
        real, fake = [s[:n] for s in scores], [s[n:] for s in scores]
        loss_g, loss_d = adversarial_losses(real, fake, self.cfg.loss)
        with torch.no_grad():
            recon_mse = F.mse_loss(self.decode(z_real), x)
        return {
            "loss": loss_g,
            "loss_discriminator": loss_d,
            "score_real": sum(real).mean().detach(),
            "score_fake": sum(fake).mean().detach(),
            "diversity": diversity(x_fake, x),
            "recon_mse": recon_mse,
            "latent_std": z_real.detach().float().std(0, unbiased=False).mean(),
        }

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) [B, latent_dim]."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)): what the representation kept of x, as G draws it."""
        return self.decode(self.encode(x))


@register_method("gan", pillar="generative")
class GAN(AdversarialBase):
    """GAN (Goodfellow et al.): a generator only; no encoder, so no representation to evaluate."""

    Config = GANConfig

    def build_players(self, cfg, encoder_features):
        # a plain GAN has no encoder: encoder_features is dropped
        self.x_score = _sn(nn.Linear(cfg.hidden, 1), cfg.spectral_norm)

    def discriminator_parameters(self):
        return [*self.x_features.parameters(), *self.x_score.parameters()]

    def discriminate(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.x_score(self.x_features(x)).squeeze(1)]

    def loss(self, batch, step):
        """Data x is "real", G(z) "fake"; see :func:`adversarial_losses`."""
        x = batch["x"]
        n = len(x)
        self.check_batch(n)
        x_fake = self.sample(n)
        (scores,) = self.discriminate(torch.cat([x, x_fake]))
        real, fake = scores[:n], scores[n:]
        loss_g, loss_d = adversarial_losses([real], [fake], self.cfg.loss, real_side=False)
        return {
            "loss": loss_g,
            "loss_discriminator": loss_d,
            "score_real": real.mean().detach(),
            "score_fake": fake.mean().detach(),
            "diversity": diversity(x_fake, x),
        }


__all__ = [
    "BiGAN",
    "GAN",
    "adversarial_losses",
    "diversity",
    "is_collapsed",
    "mean_pairwise_distance",
    "COLLAPSE_THRESHOLD",
]
