"""Gaussian VAEs with disentanglement_lib's architecture: VAE, beta-VAE and the annealed VAE.

ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)); the models differ only in the objective they
build from the reconstruction and KL terms (``objective``, the one hook every VAE here and in
``disentangling_vae`` overrides):

- ``vae`` (Kingma and Welling, 2014): recon + KL.
- ``beta_vae`` (Higgins et al., 2017): recon + beta * KL, beta > 1 pressing for disentangling.
- ``annealed_vae`` (Burgess et al., 2018): recon + gamma * |KL - C|, the capacity C raised
  linearly from 0 to ``c_max`` nats over ``iteration_threshold`` steps.

Reconstruction is a Bernoulli log-likelihood on logits (summed over pixels) by default, as in
disentanglement_lib, or a unit-variance Gaussian one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Decoder, Encoder, LatentKL, Sampler
from replab.methods.inputs import Images
from replab.nn.conv import architecture_problem, make_encoder_decoder
from replab.registry import register_method

# disentanglement_lib: Adam(1e-4, beta1 0.9, beta2 0.999, eps 1e-8), batch 64, constant lr,
# no gradient clipping. It trains 300,000 steps; replab's default budget is shorter (train.steps).
VAE_TRAIN_DEFAULTS = {
    "optimizer": "adam",
    "lr": 1e-4,
    "batch_size": 64,
    "schedule": "constant",
    "grad_clip": 0.0,
}


@dataclass
class VAEConfig:
    latent_dim: int = param(10, min=1)
    architecture: str = param("auto", choices=["auto", "conv", "mlp"], help="auto: conv >= 16px")
    reconstruction: str = param("bernoulli", choices=["bernoulli", "gaussian"])


def kl_per_latent(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per example and latent: 0.5 (m^2 + v - log v - 1)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0)


class GaussianVAE(Method, Encoder, Decoder, Sampler, LatentKL):
    """Shared model: encoder -> (mean, logvar), reparameterised sample, decoder -> logits."""

    accepts = Images()
    train_defaults = VAE_TRAIN_DEFAULTS
    batched_seeds = True

    @classmethod
    def data_problem(cls, info, cfg):
        return super().data_problem(info, cfg) or architecture_problem(cfg.architecture, info.shape)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.encoder, self.decoder = make_encoder_decoder(
            cfg.architecture, info.shape, cfg.latent_dim
        )
        self.to_mean = nn.Linear(self.encoder.out_dim, cfg.latent_dim)
        self.to_logvar = nn.Linear(self.encoder.out_dim, cfg.latent_dim)

    def posterior(self, x):
        h = self.encoder(x)
        return self.to_mean(h), self.to_logvar(h)

    def reconstruction_loss(self, logits, x):
        """-log p(x|z), summed over pixels, per example."""
        if self.cfg.reconstruction == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            nll = 0.5 * (torch.sigmoid(logits) - x).pow(2)
        return nll.flatten(1).sum(1)

    def objective(self, recon, kl, mean, logvar, z, step: int) -> dict[str, torch.Tensor]:
        """``{"loss": ..., logged terms}`` from the batch means of -log p(x|z) (``recon``) and
        KL(q(z|x) || p(z)) (``kl``), the posterior and its sample: the ELBO's negative here;
        each variant weighs or adds to it."""
        return {"loss": recon + kl}

    def posterior_sample(self, x):
        """(mean, logvar, z): the posterior and a reparameterised draw from it."""
        mean, logvar = self.posterior(x)
        return mean, logvar, mean + self.draw_normal(mean) * (0.5 * logvar).exp()

    def loss(self, batch, step):
        x = batch["x"]
        mean, logvar, z = self.posterior_sample(x)
        recon = self.reconstruction_loss(self.decoder(z), x).mean()
        kl = kl_per_latent(mean, logvar).sum(1).mean()
        terms = self.objective(recon, kl, mean, logvar, z, step)
        return {"loss": terms.pop("loss"), "recon": recon, "kl": kl, "elbo": -(recon + kl), **terms}

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def sample(self, n: int):
        return self.decode(torch.randn(n, self.cfg.latent_dim, device=self.device))

    def latent_kl(self, x):
        """Mean KL per latent over ``x``: which latents carry information (traversal order)."""
        mean, logvar = self.posterior(x)
        return kl_per_latent(mean, logvar).mean(0)


@register_method("vae", pillar="generative")
class VAE(GaussianVAE):
    """Variational autoencoder (Kingma and Welling): maximise the ELBO."""

    Config = VAEConfig


@dataclass
class BetaVAEConfig(VAEConfig):
    beta: float = param(4.0, min=0.0, help="KL weight; Higgins et al. use 4 on dSprites")


@register_method("beta_vae", pillar="generative")
class BetaVAE(GaussianVAE):
    """beta-VAE (Higgins et al.): the KL term weighted by beta > 1 to favour disentangling."""

    Config = BetaVAEConfig

    def objective(self, recon, kl, mean, logvar, z, step):
        return {"loss": recon + self.cfg.beta * kl}


@dataclass
class AnnealedVAEConfig(VAEConfig):
    gamma: float = param(1000.0, min=0.0, help="weight of |KL - C|")
    c_max: float = param(25.0, min=0.0, help="final capacity C in nats")
    iteration_threshold: int = param(100000, min=1, help="steps over which C grows to c_max")


@register_method("annealed_vae", pillar="generative")
class AnnealedVAE(GaussianVAE):
    """Annealed VAE (Burgess et al.): gamma * |KL - C| with the capacity C growing linearly."""

    Config = AnnealedVAEConfig

    def capacity(self, step: int) -> float:
        return min(self.cfg.c_max, self.cfg.c_max * step / self.cfg.iteration_threshold)

    def objective(self, recon, kl, mean, logvar, z, step):
        return {"loss": recon + self.cfg.gamma * (kl - self.capacity(step)).abs()}
