"""The disentangling VAEs of disentanglement_lib's study: FactorVAE, beta-TCVAE and DIP-VAE.

Together with ``beta_vae`` and ``annealed_vae`` (methods/vae.py) these are the six models of
Locatello et al. (2019), "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", with the definitions of disentanglement_lib
(``methods/unsupervised/vae.py``). Each adds a penalty to the ELBO that pushes the aggregate
posterior q(z) = E_x q(z|x) towards independent latents:

- ``factor_vae`` (Kim and Mnih, 2018): recon + KL + gamma * TC, TC estimated by a discriminator
  that tells samples of q(z) from samples of prod_l q(z_l) (each latent permuted across the batch).
- ``beta_tcvae`` (Chen et al., 2018): recon + KL + (beta - 1) * TC, TC estimated on the batch by
  minibatch-weighted sampling.
- ``dip_vae`` (Kumar et al., 2018): recon + KL + lambda_od * sum_{i!=j} C_ij^2
  + lambda_d * sum_i (C_ii - 1)^2, with C = Cov[E q(z|x)] (type i) or Cov_q(z)[z] (type ii).

disentanglement_lib binds every weight with ``gin.REQUIRED``; the defaults here are the papers'
dSprites settings, and each field's help names the study's sweep.
"""

import math
from abc import abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.vae import GaussianVAE, VAEConfig
from replab.registry import register_method

LOG_2PI = math.log(2.0 * math.pi)
# disentanglement_lib clips the discriminator's probabilities to [1e-6, 1 - 1e-6]
LOG_P_MIN, LOG_P_MAX = math.log(1e-6), math.log1p(-1e-6)


def _check_batch(z: torch.Tensor, what: str) -> None:
    if z.ndim != 2:
        raise ValueError(f"{what} expects latents of shape [batch, dim], got {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"{what} needs a batch of at least 2 examples, got {z.shape[0]}")


def gaussian_log_density(x, mean, logvar):
    """Elementwise log N(x; mean, exp(logvar)) = -0.5 ((x - mean)^2 / var + log var + log 2 pi)."""
    return -0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def total_correlation(z, mean, logvar, dataset_size: int = 1):
    """Minibatch-weighted sampling estimate of TC(q(z)) on a batch (Chen et al., 2018, eq. S5).

    TC = E_q(z)[log q(z) - sum_l log q(z_l)], the expectation over the batch's samples z_j, with

        log q(z_j)   ~ logsumexp_i sum_l log q(z_jl | x_i) - log(N M)
        log q(z_jl)  ~ logsumexp_i log q(z_jl | x_i)       - log(N M)

    for a batch of M and a data set of N. The two constants leave (D - 1) log(N M) in the TC;
    disentanglement_lib drops it, Chen et al.'s code keeps it with N the data-set size. Neither
    changes the gradient. The default N = 1 makes q(z) the batch's own aggregate posterior
    (1/M) sum_i q(z|x_i), so the value is a consistent estimate of TC as M grows (about 0 for
    independent latents) and is what is logged.
    """
    _check_batch(z, "total_correlation")
    m, d = z.shape
    # log q(z_j,l | x_i) for every pair: [j, i, l]
    log_q = gaussian_log_density(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(log_q.sum(2), dim=1)
    log_prod_qz = torch.logsumexp(log_q, dim=1).sum(1)
    return (log_qz - log_prod_qz).mean() + (d - 1) * math.log(dataset_size * m)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension permuted independently across the batch (Kim and Mnih, Alg. 2):
    a sample of prod_l q(z_l) from a sample of q(z)."""
    _check_batch(z, "permute_dims")
    keys = torch.rand(z.shape, generator=generator, device="cpu").to(z.device)
    return z.gather(0, keys.argsort(dim=0))


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Batch covariance E[x x^T] - E[x] E[x]^T (divided by n, as in disentanglement_lib)."""
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / x.shape[0]


def dip_regularizer(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2: distance of C from I."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


class _PenalisedVAE(GaussianVAE):
    """recon + KL + penalty(mean, logvar, z): the ELBO with one extra term, logged apart."""

    @abstractmethod
    def penalty(self, mean, logvar, z) -> dict[str, torch.Tensor]:
        """``{"penalty": scalar, ...}``: the extra term added to the ELBO, and what it logs."""

    def objective(self, recon, kl, mean, logvar, z, step):
        logs = self.penalty(mean, logvar, z)
        penalty = logs.pop("penalty")
        return {"loss": recon + kl + penalty, "penalty": penalty, **logs}


# ----------------------------------------------------------------------------------------------
# FactorVAE


@dataclass
class FactorVAEConfig(VAEConfig):
    gamma: float = param(
        35.0,
        min=0.0,
        help="TC weight; Kim and Mnih use 35 on dSprites; disentanglement_lib sweeps "
        "10, 20, 30, 40, 50, 100",
    )
    disc_hidden: int = param(1000, min=1, help="discriminator width (Kim and Mnih: 1000)")
    disc_layers: int = param(6, min=1, help="discriminator hidden layers (Kim and Mnih: 6)")


class Discriminator(nn.Module):
    """z -> 2 logits (real q(z), permuted prod_l q(z_l)): disentanglement_lib's
    fc_discriminator, LeakyReLU(0.2) MLP."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        mods, prev = [], latent_dim
        for _ in range(layers):
            mods += [nn.Linear(prev, hidden), nn.LeakyReLU(0.2)]
            prev = hidden
        mods.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z):
        return self.net(z)


@register_method("factor_vae", pillar="generative")
class FactorVAE(_PenalisedVAE):
    """FactorVAE (Kim and Mnih, 2018): recon + KL + gamma * TC, TC from a discriminator.

    VAE loss: recon + KL + gamma * E_q(z)[D_0(z) - D_1(z)] (logits: the log density ratio
    q(z) / prod_l q(z_l)). Discriminator loss, its own Adam (beta1 0.5, beta2 0.9):
    -(1/2) E[log p_0(z)] - (1/2) E[log p_1(permute(z))], probabilities clipped to [1e-6, 1-1e-6].
    As in disentanglement_lib both updates come from one forward pass on one batch.
    """

    Config = FactorVAEConfig
    # disentanglement_lib's discriminator/AdamOptimizer: beta1 0.5, beta2 0.9 (lr 1e-4, the
    # VAE's own, so it follows train.lr)
    group_train_overrides = {"discriminator": {"betas": [0.5, 0.9]}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.discriminator = Discriminator(cfg.latent_dim, cfg.disc_hidden, cfg.disc_layers)

    def param_groups(self):
        disc = list(self.discriminator.parameters())
        ids = {id(p) for p in disc}
        main = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return {"main": main, "discriminator": disc}

    def penalty(self, mean, logvar, z):
        _check_batch(z, "factor_vae")
        logits = self.discriminator(z)
        # the permuted sample only trains the discriminator: no path back to the encoder
        logits_perm = self.discriminator(permute_dims(z.detach()))
        tc = (logits[:, 0] - logits[:, 1]).mean()
        log_p = F.log_softmax(logits, dim=1).clamp(LOG_P_MIN, LOG_P_MAX)
        log_p_perm = F.log_softmax(logits_perm, dim=1).clamp(LOG_P_MIN, LOG_P_MAX)
        loss_disc = -0.5 * (log_p[:, 0].mean() + log_p_perm[:, 1].mean())
        with torch.no_grad():
            accuracy = 0.5 * (
                (logits[:, 0] > logits[:, 1]).float().mean()
                + (logits_perm[:, 1] > logits_perm[:, 0]).float().mean()
            )
        return {
            "penalty": self.cfg.gamma * tc,
            "tc": tc,
            "loss_discriminator": loss_disc,
            "disc_accuracy": accuracy,
        }


# ----------------------------------------------------------------------------------------------
# beta-TCVAE


@dataclass
class BetaTCVAEConfig(VAEConfig):
    beta: float = param(
        6.0,
        min=0.0,
        help="TC weight; Chen et al. use 6 on dSprites; disentanglement_lib sweeps "
        "1, 2, 4, 6, 8, 10",
    )


@register_method("beta_tcvae", pillar="generative")
class BetaTCVAE(_PenalisedVAE):
    """beta-TCVAE (Chen et al., 2018): recon + KL + (beta - 1) * TC, TC from the minibatch.

    Chen et al.'s eq. 4 with alpha = gamma = 1 (as disentanglement_lib); the total correlation
    is the minibatch-weighted sampling estimate (``total_correlation``)."""

    Config = BetaTCVAEConfig

    def penalty(self, mean, logvar, z):
        tc = total_correlation(z, mean, logvar)
        return {"penalty": (self.cfg.beta - 1.0) * tc, "tc": tc}


# ----------------------------------------------------------------------------------------------
# DIP-VAE


@dataclass
class DIPVAEConfig(VAEConfig):
    dip_type: str = param(
        "i",
        choices=["i", "ii"],
        help="i: covariance of the encoder means; ii: of q(z) (adds E[diag(var)])",
    )
    lambda_od: float = param(
        10.0,
        min=0.0,
        help="off-diagonal weight; Kumar et al. use 10 on dSprites; disentanglement_lib "
        "sweeps 1, 2, 5, 10, 20, 50",
    )
    lambda_d_factor: float | None = param(
        None,
        min=0.0,
        help="lambda_d = lambda_d_factor * lambda_od; default (null) as disentanglement_lib: "
        "10 for type i, 1 for type ii",
    )


@register_method("dip_vae", pillar="generative")
class DIPVAE(_PenalisedVAE):
    """DIP-VAE (Kumar et al., 2018): recon + KL + a penalty pulling Cov(z) towards I.

    Type i (eq. 6): C = Cov_p(x)[mu(x)]. Type ii (eq. 7): C = E_p(x)[diag(var(x))] + Cov[mu(x)].
    Penalty: lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2, on the batch.
    """

    Config = DIPVAEConfig

    @property
    def lambda_d(self) -> float:
        factor = self.cfg.lambda_d_factor
        if factor is None:
            factor = 10.0 if self.cfg.dip_type == "i" else 1.0
        return factor * self.cfg.lambda_od

    def latent_covariance(self, mean, logvar):
        cov = covariance(mean)
        if self.cfg.dip_type == "ii":
            cov = cov + torch.diag(logvar.exp().mean(0))
        return cov

    def penalty(self, mean, logvar, z):
        cov = self.latent_covariance(mean, logvar)
        diag = torch.diagonal(cov)
        return {
            "penalty": dip_regularizer(cov, self.cfg.lambda_od, self.lambda_d),
            "cov_off_diag": (cov - torch.diag(diag)).pow(2).sum(),
            "cov_diag": (diag - 1.0).pow(2).sum(),
        }
