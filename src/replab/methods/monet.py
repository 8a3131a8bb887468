"""MONet (Burgess et al. 2019): an attention network cuts the scene into K masks one after the
other, and a component VAE encodes and redraws the image under each mask.

Attention, by stick-breaking: the scope starts as s_0 = 1 everywhere; at step k a U-Net reads the
image and log s_{k-1} and gives alpha_k in (0, 1); the mask is m_k = s_{k-1} alpha_k and the scope
left is s_k = s_{k-1} (1 - alpha_k); the last mask takes what is left, m_K = s_{K-1}. The masks
sum to one at every pixel (all in log space, for precision).

Component VAE: per slot, an encoder reads the image and log m_k and gives q(z_k) (a diagonal
Gaussian); a spatial-broadcast decoder (z_k tiled over the image with two coordinate channels,
then 3x3 convolutions) gives the slot's colours mu_k and mask logits. The loss per image:

    -log sum_k m_k N(x | mu_k, sigma_k^2)  +  beta sum_k KL(q(z_k) || N(0, I))
    +  gamma KL(m || softmax_k(mask logits))

with sigma_0 = 0.09 for the first slot (it learns the background) and 0.11 for the others, beta
and gamma 0.5, and RMSProp at 1e-4, as the paper. A pixel's likelihood is its C values'
Gaussians under one slot (the paper's product over pixels of a mixture over slots); the mask KL
is summed over pixels. ``encode`` pools the slots' posterior means (mean and max over
slots), a code that does not depend on which slot took which object; ``decompose`` gives the
attention masks and each slot's colours. replab's defaults are narrower than the paper's (its
U-Net has 5 blocks of 32-64 channels, its VAE 16 latents and 32-64 channels), so a CPU trains
it in minutes; ``model.preset=paper`` restores the paper's widths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import Presets, param
from replab.methods.base import Method
from replab.methods.capabilities import Encoder, Segmenter
from replab.methods.inputs import Images
from replab.registry import register_method


@dataclass
class MONetConfig(Presets):
    num_slots: int = param(4, min=2, help="K: the background and the objects")
    latent_dim: int = param(16, min=1, help="z per slot (the paper's 16)")
    unet_width: int = param(16, min=4, help="channels of the U-Net's first block (doubling)")
    unet_blocks: int = param(3, min=1, help="resolutions of the U-Net (the paper's 5)")
    vae_width: int = param(32, min=4, help="channels of the component VAE's convolutions")
    beta: float = param(0.5, min=0.0, help="weight of the latents' KL")
    gamma: float = param(0.5, min=0.0, help="weight of the masks' KL")
    background_sigma: float = param(0.09, min=1e-3, help="pixel sigma of the first slot")
    foreground_sigma: float = param(0.11, min=1e-3, help="pixel sigma of the other slots")
    preset: str = param("cpu", choices=["cpu", "paper"], help="paper: the paper's sizes (a GPU)")

    PRESETS = {
        "cpu": {},
        "paper": {"unet_width": 32, "unet_blocks": 5, "vae_width": 64},
    }  # fmt: skip


def coordinates(height: int, width: int) -> torch.Tensor:
    """[2, H, W]: x and y from -1 to 1 (the spatial-broadcast decoder's extra channels)."""
    y = torch.linspace(-1.0, 1.0, height)[:, None].expand(height, width)
    x = torch.linspace(-1.0, 1.0, width)[None, :].expand(height, width)
    return torch.stack([x, y])


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    """The attention network: image and log scope in, one logit per pixel out. Down by max
    pooling, up by nearest upsampling to the skip's size (odd sides included), and a small MLP
    at the bottom, as the paper's."""

    def __init__(self, cin: int, width: int, blocks: int):
        super().__init__()
        widths = [width * 2 ** min(i, 2) for i in range(blocks)]
        self.down = nn.ModuleList(
            block(a, b) for a, b in zip([cin, *widths[:-1]], widths, strict=True)
        )
        bottom = widths[-1]
        self.middle = nn.Sequential(
            nn.Conv2d(bottom, bottom, 1), nn.ReLU(), nn.Conv2d(bottom, bottom, 1)
        )
        self.up = nn.ModuleList(
            block(2 * w, p) for w, p in zip(widths[::-1], [*widths[::-1][1:], width], strict=True)
        )
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, layer in enumerate(self.down):
            x = layer(x if i == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        x = self.middle(x)
        for layer, skip in zip(self.up, skips[::-1], strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = layer(torch.cat([x, skip], 1))
        return self.out(x)


class ComponentVAE(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], latent: int, width: int):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels + 1, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * width * 16, 4 * width), nn.ReLU(), nn.Linear(4 * width, 2 * latent),
        )  # fmt: skip
        # broadcast 4 pixels wider each way; four unpadded 3x3 convolutions trim it back
        h, w = size
        self.register_buffer("coords", coordinates(h + 8, w + 8), persistent=False)
        self.decoder = nn.Sequential(
            nn.Conv2d(latent + 2, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(),
            nn.Conv2d(width, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(),
            nn.Conv2d(width, channels + 1, 1),
        )  # fmt: skip

    def posterior(self, x: torch.Tensor, log_mask: torch.Tensor):
        return self.encoder(torch.cat([x, log_mask], 1)).chunk(2, 1)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Colours [B, C, H, W] and mask logits [B, 1, H, W] of latents [B, D]."""
        _, h, w = self.coords.shape
        grid = torch.cat([z[:, :, None, None].expand(-1, -1, h, w),
                          self.coords[None].expand(len(z), -1, -1, -1).to(z.dtype)], 1)  # fmt: skip
        out = self.decoder(grid)
        return out[:, :-1], out[:, -1:]


@register_method("monet", pillar="generative")
class MONet(Method, Encoder, Segmenter):
    """Attention masks by stick-breaking and a VAE per slot: scenes decomposed into objects."""

    Config = MONetConfig
    accepts = Images(min_side=8)
    # The paper's RMSProp at a constant 1e-4.
    train_defaults = {"optimizer": "rmsprop", "lr": 1e-4, "batch_size": 32, "grad_clip": 0.0,
                      "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0}  # fmt: skip

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, h, w = info.shape
        self.attention = UNet(c + 1, cfg.unet_width, cfg.unet_blocks)
        self.vae = ComponentVAE(c, (h, w), cfg.latent_dim, cfg.vae_width)
        sigmas = [cfg.background_sigma] + [cfg.foreground_sigma] * (cfg.num_slots - 1)
        self.register_buffer("sigmas", torch.tensor(sigmas), persistent=False)

    def log_masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log masks [B, K, H, W] by stick-breaking, and the log scopes [B, K, H, W] each step
        started from (s_0 = 1 first)."""
        log_scope = torch.zeros_like(x[:, :1])
        masks, scopes = [], []
        for _ in range(self.cfg.num_slots - 1):
            scopes.append(log_scope)
            logit = self.attention(torch.cat([x, log_scope], 1))
            masks.append(log_scope + F.logsigmoid(logit))
            log_scope = log_scope + F.logsigmoid(-logit)
        scopes.append(log_scope)
        masks.append(log_scope)
        return torch.cat(masks, 1), torch.cat(scopes, 1)

    def _slots(self, x: torch.Tensor, log_masks: torch.Tensor, sample: bool):
        b, k = log_masks.shape[:2]
        xs = x[:, None].expand(-1, k, -1, -1, -1).flatten(0, 1)
        mu, logvar = self.vae.posterior(xs, log_masks.flatten(0, 1)[:, None])
        z = mu + (0.5 * logvar).exp() * self.draw_normal(mu) if sample else mu
        colours, mask_logits = self.vae.decode(z)
        return (mu.view(b, k, -1), logvar.view(b, k, -1), colours.view(b, k, *x.shape[1:]),
                mask_logits.view(b, k, *x.shape[2:]))  # fmt: skip

    def decompose(self, x):
        log_masks, _ = self.log_masks(x)
        _, _, colours, _ = self._slots(x, log_masks, sample=False)
        return log_masks.exp(), colours

    def encode(self, x):
        log_masks, _ = self.log_masks(x)
        mu = self._slots(x, log_masks, sample=False)[0]
        return torch.cat([mu.mean(1), mu.amax(1)], 1)

    def loss(self, batch, step):
        x = batch["x"]
        log_masks, _ = self.log_masks(x)
        mu, logvar, colours, mask_logits = self._slots(x, log_masks, sample=True)
        sigma = self.sigmas.view(1, -1, 1, 1, 1).to(colours.dtype)
        log_normal = (-0.5 * ((x[:, None] - colours) / sigma) ** 2 - sigma.log()
                      - 0.5 * math.log(2 * math.pi)).sum(2)  # [B, K, H, W]  # fmt: skip
        # the mixture's log-likelihood of each pixel (its C values), weighted by the masks
        nll = -torch.logsumexp(log_masks.float() + log_normal.float(), 1).flatten(1).sum(1)
        kl = (0.5 * (mu.float() ** 2 + logvar.float().exp() - logvar.float() - 1)).flatten(1).sum(1)
        log_decoded = F.log_softmax(mask_logits.float(), 1)
        mask_kl = (log_masks.float().exp() * (log_masks.float() - log_decoded)).flatten(1).sum(1)
        loss = nll + self.cfg.beta * kl + self.cfg.gamma * mask_kl
        recon = (log_masks.exp()[:, :, None] * colours).sum(1)
        return {
            "loss": loss.mean(),
            "nll": nll.mean().detach(),
            "kl": kl.mean().detach(),
            "mask_kl": mask_kl.mean().detach(),
            "mse": F.mse_loss(recon.float(), x.float()).detach(),
        }
