"""DARLA's vision module (Higgins et al. 2017, "DARLA: improving zero-shot transfer in
reinforcement learning"): a beta-VAE whose reconstruction is measured in the feature space of
a denoising autoencoder (DAE) instead of pixel by pixel.

Two stages in one run, chosen by the step:

1. steps < ``dae_steps``: the DAE (disentanglement_lib's conv encoder to ``dae_dim`` features
   and its decoder) learns to restore images with half their pixels masked (each pixel kept
   with probability 1/2, all channels together): L = BCE(D(J(x * m)), x).
2. after: the beta-VAE trains against the frozen DAE features J,
   L = sum_k (J_k(x) - J_k(sigmoid(g(z))))^2 / s_k^2 + beta KL(q(z|x) || N(0, I)),
   the DAE's weights detached (gradients reach the VAE only). s_k^2 is feature k's variance
   over the batch (no gradient): the DAE's features come at whatever scale its training left
   them (their squared errors summed to 0.4 on seek_avoid, against a KL of tens of nats, and the
   VAE collapsed), so the paper's unscaled distance would make beta mean something else for
   every DAE. In units of their spread, beta 1 weighs the two terms as for a unit-variance
   Gaussian likelihood.

A pixel loss rewards matching every pixel, and small objects weigh little against a large
background; the DAE's features weigh what its bottleneck keeps, which the paper found gives
latents that capture objects and transfer. ``encode`` is the VAE's posterior mean. beta 1 by
default: the feature loss has another scale than the pixel loss, so beta-VAE's 4 is no guide.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.vae import BetaVAEConfig, GaussianVAE, kl_per_latent
from replab.nn.conv import make_encoder_decoder
from replab.registry import register_method


@dataclass
class DARLAConfig(BetaVAEConfig):
    beta: float = param(1.0, min=0.0, help="KL weight against the DAE-feature loss")
    dae_steps: int = param(1000, min=0, help="the first steps train the DAE")
    dae_dim: int = param(100, min=1, help="width of the DAE's bottleneck")


@register_method("darla", pillar="generative")
class DARLA(GaussianVAE):
    """beta-VAE with its reconstruction measured in a denoising autoencoder's features."""

    Config = DARLAConfig
    idle_parameters = True  # the DAE's steps leave the VAE idle, and the VAE's the DAE

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.dae_encoder, self.dae_decoder = make_encoder_decoder(
            cfg.architecture, info.shape, cfg.dae_dim
        )
        self.dae_bottleneck = nn.Linear(self.dae_encoder.out_dim, cfg.dae_dim)

    def dae_features(self, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """J(x): the DAE's bottleneck; with ``frozen``, its weights carry no gradient."""
        if not frozen:
            return self.dae_bottleneck(self.dae_encoder(x))
        params = {k: v.detach() for k, v in self.dae_encoder.named_parameters()}
        h = torch.func.functional_call(self.dae_encoder, params, (x,))
        return F.linear(h, self.dae_bottleneck.weight.detach(), self.dae_bottleneck.bias.detach())

    def loss(self, batch, step):
        x = batch["x"]
        if step < self.cfg.dae_steps:
            keep = (self.draw_normal(x[:, :1]) > 0).to(x.dtype)  # each pixel kept with p 1/2
            logits = self.dae_decoder(self.dae_features(x * keep))
            dae = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            dae = dae.flatten(1).sum(1).mean()
            return {"loss": dae, "dae": dae}
        mean, logvar, z = self.posterior_sample(x)
        x_hat = torch.sigmoid(self.decoder(z))
        with torch.no_grad():
            target = self.dae_features(x)
        spread = target.var(0, unbiased=False) + 1e-6
        recon = ((self.dae_features(x_hat, frozen=True) - target).pow(2) / spread).sum(1).mean()
        kl = kl_per_latent(mean, logvar).sum(1).mean()
        return {"loss": recon + self.cfg.beta * kl, "feature_recon": recon, "kl": kl}
