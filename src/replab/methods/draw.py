"""DRAW (Gregor et al. 2015): a recurrent VAE that draws an image over T steps with attention.

With c_0 = 0 and the LSTM states at zero, for t = 1..T:

    x_hat_t = x - sigmoid(c_{t-1})                      (what the canvas still gets wrong)
    r_t     = read(x, x_hat_t, h_dec_{t-1})             (an N x N glimpse of each)
    h_enc_t = LSTM_enc(h_enc_{t-1}, [r_t, h_dec_{t-1}])
    z_t     ~ q(z_t | h_enc_t) = N(mu_t, sigma_t^2)
    h_dec_t = LSTM_dec(h_dec_{t-1}, z_t)
    c_t     = c_{t-1} + write(h_dec_t)                  (an N x N patch added to the canvas)

    loss = -log Bernoulli(x | sigmoid(c_T)) + sum_t KL(q(z_t | .) || N(0, I))

Attention (section 3.2): from h_dec a linear layer gives (g~x, g~y, log sigma^2, log delta~,
log gamma); the glimpse's centre is g = (A + 1) / 2 (g~ + 1), its stride
delta = (max(A, B) - 1) / (N - 1) exp(log delta~), and filter i sits at
mu_i = g + (i - N / 2 - 0.5) delta (pixels numbered from 1). The filterbanks F_X [N, A] and
F_Y [N, B] are normalised Gaussians; read is gamma F_Y x F_X^T, write is
(1 / gamma) F_Y^T w F_X. Without attention, read is [x, x_hat] whole and write a dense layer.

The decoder sees only z_1..z_T, so ``decode(z)`` of the concatenated latents is well defined and
``encode(x)`` is the posterior means mu_1..mu_T concatenated ([T * latent_dim]), computed
feeding each step's mean forward. The paper's MNIST model (its table 3): 64 glimpses, LSTMs of
256, 100 latents per step, read 2x2, write 5x5. replab's defaults keep the glimpse sizes and the
LSTMs but take 10 steps of 10 latents, so that the representation (100 numbers) suits the
probes and disentanglement metrics; set ``steps=64 latent_dim=100`` for the paper's.

Attention is off by default (the paper's "DRAW without attention", its table 2), because on
what a CPU trains in minutes it is the variant that learns first: with attention the glimpses
must first learn to find a small object, and until they do the reconstruction stays about what
the mean image gives (the README's "what to expect" has the measured runs). Pass
``attention=true`` for the paper's attentive model, and train it longer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Decoder, Encoder, LatentKL, Sampler
from replab.methods.inputs import Images
from replab.methods.vae import kl_per_latent
from replab.registry import register_method


@dataclass
class DRAWConfig:
    steps: int = param(10, min=1, help="drawing steps T (the paper: 64 on MNIST)")
    latent_dim: int = param(10, min=1, help="latents per step (the paper: 100 on MNIST)")
    hidden: int = param(256, min=1, help="units of the encoder's and the decoder's LSTM")
    attention: bool = param(False, help="Gaussian-filterbank read and write (False: whole image)")
    read_n: int = param(2, min=2, help="read glimpse N x N")
    write_n: int = param(5, min=2, help="write patch N x N")


def filterbanks(params: torch.Tensor, n: int, height: int, width: int):
    """(F_Y [B, N, H], F_X [B, N, W], gamma [B]) from the 5 attention numbers per example
    (g~x, g~y, log sigma^2, log delta~, log gamma), by the paper's equations 19-26."""
    gx_, gy_, log_var, log_delta, log_gamma = params.float().unbind(1)
    gx = (width + 1) / 2 * (gx_ + 1)
    gy = (height + 1) / 2 * (gy_ + 1)
    delta = (max(height, width) - 1) / (n - 1) * log_delta.exp()
    var = log_var.exp()
    offsets = torch.arange(1, n + 1, device=params.device, dtype=torch.float32) - n / 2 - 0.5

    def bank(centre, size):
        mu = centre[:, None] + offsets * delta[:, None]  # [B, N]
        pixels = torch.arange(1, size + 1, device=params.device, dtype=torch.float32)
        # exp(-(a - mu)^2 / 2 sigma^2) / Z as a softmax: exact, and finite even for a filter
        # whose centre lies far outside the image (its mass then goes to the nearest pixel)
        return torch.softmax(-((pixels - mu[..., None]) ** 2) / (2 * var[:, None, None]), -1)

    return bank(gy, height), bank(gx, width), log_gamma.exp()


@register_method("draw", pillar="generative")
class DRAW(Method, Encoder, Decoder, Sampler, LatentKL):
    """DRAW (Gregor et al. 2015): recurrent VAE with differentiable attention."""

    Config = DRAWConfig
    accepts = Images()
    # The paper does not list its optimiser settings; these are replab's: Adam 1e-3 with the
    # gradient norm clipped at 10, as recurrent VAEs commonly train.
    train_defaults = {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 64,
        "schedule": "constant",
        "grad_clip": 10.0,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, h, w = info.shape
        self.pixels = c * h * w
        read_dim = 2 * c * cfg.read_n**2 if cfg.attention else 2 * self.pixels
        write_dim = c * cfg.write_n**2 if cfg.attention else self.pixels
        self.encoder = nn.LSTMCell(read_dim + cfg.hidden, cfg.hidden)
        self.decoder = nn.LSTMCell(cfg.latent_dim, cfg.hidden)
        self.to_posterior = nn.Linear(cfg.hidden, 2 * cfg.latent_dim)
        self.to_write = nn.Linear(cfg.hidden, write_dim)
        if cfg.attention:
            self.to_read_attention = self._attention_layer(cfg.read_n, max(h, w))
            self.to_write_attention = self._attention_layer(cfg.write_n, max(h, w))

    def _attention_layer(self, n: int, size: int) -> nn.Linear:
        """h_dec -> the 5 attention numbers, starting as a grid over the whole image whose
        filters are as wide as half their stride (sigma = delta / 2), rather than sigma = 1 at
        PyTorch's default init: on 64x64 sprites a 2x2 read with sigma = 1 sees only the four
        corner pixels, and the posterior collapses before the glimpses can learn to move."""
        layer = nn.Linear(self.cfg.hidden, 5)
        delta = (size - 1) / (n - 1)
        with torch.no_grad():
            layer.weight.mul_(0.01)
            layer.bias.copy_(torch.tensor([0.0, 0.0, 2 * math.log(delta / 2), 0.0, 0.0]))
        return layer

    # ---------------------------------------------------------------- attention
    def read(self, x, x_hat, h_dec):
        if not self.cfg.attention:
            return torch.cat([x.flatten(1), x_hat.flatten(1)], 1)
        _, h, w = self.info.shape
        fy, fx, gamma = filterbanks(self.to_read_attention(h_dec), self.cfg.read_n, h, w)
        fy, fx = fy.to(x.dtype), fx.to(x.dtype)

        def glimpse(img):  # gamma F_Y img F_X^T, per channel: [B, C, N, N]
            return fy[:, None] @ img @ fx[:, None].transpose(-1, -2)

        both = torch.cat([glimpse(x), glimpse(x_hat)], 1)
        return (both * gamma.to(x.dtype).view(-1, 1, 1, 1)).flatten(1)

    def write(self, h_dec):
        c, h, w = self.info.shape
        patch = self.to_write(h_dec)
        if not self.cfg.attention:
            return patch.view(-1, c, h, w)
        n = self.cfg.write_n
        fy, fx, gamma = filterbanks(self.to_write_attention(h_dec), n, h, w)
        fy, fx = fy.to(patch.dtype), fx.to(patch.dtype)
        canvas = fy[:, None].transpose(-1, -2) @ patch.view(-1, c, n, n) @ fx[:, None]
        return canvas / gamma.to(patch.dtype).view(-1, 1, 1, 1)

    # ---------------------------------------------------------------- the T steps
    def _decode_step(self, z, dec, canvas):
        """One decoder step, shared by training and ``decode``: (h_dec, c_dec), canvas + write."""
        dec = self.decoder(z, dec)
        return dec, canvas + self.write(dec[0])

    def _draw(self, x, sample: bool):
        """Run the T steps on ``x``: (canvas logits, posterior means, log-variances [B, T, L])."""
        b = len(x)
        zeros = x.new_zeros(b, self.cfg.hidden)
        enc, dec = (zeros, zeros), (zeros, zeros)
        canvas = x.new_zeros(x.shape)
        means, logvars = [], []
        for _ in range(self.cfg.steps):
            x_hat = x - torch.sigmoid(canvas)
            r = self.read(x, x_hat, dec[0])
            enc = self.encoder(torch.cat([r, dec[0]], 1), enc)
            mean, logvar = self.to_posterior(enc[0]).chunk(2, 1)
            z = mean + self.draw_normal(mean) * (0.5 * logvar).exp() if sample else mean
            dec, canvas = self._decode_step(z, dec, canvas)
            means.append(mean)
            logvars.append(logvar)
        return canvas, torch.stack(means, 1), torch.stack(logvars, 1)

    def loss(self, batch, step):
        x = batch["x"]
        canvas, mean, logvar = self._draw(x, sample=True)
        recon = F.binary_cross_entropy_with_logits(canvas.float(), x.float(), reduction="none")
        recon = recon.flatten(1).sum(1).mean()
        kl = kl_per_latent(mean.float(), logvar.float()).sum((1, 2)).mean()
        return {"loss": recon + kl, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    # ---------------------------------------------------------------- representation
    def encode(self, x):
        return self._draw(x, sample=False)[1].flatten(1)

    def decode(self, z):
        """Images from latents [B, T * latent_dim] (the decoder never looks at x)."""
        zs = z.view(len(z), self.cfg.steps, self.cfg.latent_dim)
        zeros = z.new_zeros(len(z), self.cfg.hidden)
        dec = (zeros, zeros)
        canvas = z.new_zeros(len(z), *self.info.shape)
        for t in range(self.cfg.steps):
            dec, canvas = self._decode_step(zs[:, t], dec, canvas)
        return torch.sigmoid(canvas)

    def reconstruct(self, x):
        return torch.sigmoid(self._draw(x, sample=False)[0])

    def sample(self, n: int):
        return self.decode(torch.randn(n, self.cfg.steps * self.cfg.latent_dim, device=self.device))

    def latent_kl(self, x):
        """Mean KL per latent (steps x latents, flattened as ``encode``) over ``x``."""
        _, mean, logvar = self._draw(x, sample=False)
        return kl_per_latent(mean, logvar).flatten(1).mean(0)
