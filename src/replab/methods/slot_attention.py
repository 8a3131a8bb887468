"""Slot Attention (Locatello et al. 2020): K slots compete for the pixels of an image, and a
spatial-broadcast decoder paints each slot's object and its mask.

Encoder: four convolutions at full resolution, a soft position embedding (a linear map of the
four ramps x, 1-x, y, 1-y, added), layer norm and a two-layer MLP, giving N = H*W inputs.
Slot attention, ``iterations`` times from slots drawn from a learned Gaussian N(mu, sigma^2):

    attn = softmax over slots of k(inputs) q(slots)^T / sqrt(D)     [N, K]
    updates = (attn / sum over inputs of attn)^T v(inputs)         [K, D]
    slots = GRU(updates, slots); slots = slots + MLP(LN(slots))

The softmax over slots (not over inputs) is what makes slots compete. With ``implicit`` (the
default) the gradient flows through the last iteration only, the slots before it detached: the
first-order implicit gradient of Chang et al. (2022), "Object representations as fixed points",
passed on to the initial slots straight through (as Jia et al.'s BO-QSA, 2023). Under it the
slots bound to objects within a CPU budget where backpropagating through every iteration had
not (the README has the runs).

Decoder: each slot, broadcast over a grid a quarter of the image's side with its own position
embedding, then two stride-2 transposed convolutions and two 3x3 convolutions to RGB and an alpha
logit (the paper's CLEVR decoder; it broadcast at full size on Multi-dSprites, four times the
cost here); the alphas' softmax over slots are the masks, the image is sum_k mask_k rgb_k, and the
loss is the mean squared error to the input. ``encode`` is the slots pooled (mean and max over
slots), a code that does not depend on the slots' order, for the probes; ``decompose`` gives the
masks and each slot's colours. Training draws the initial slots afresh; in eval mode they start
from one fixed draw, so that a code is a function of its image.

The paper trains for 500k steps with Adam 4e-4 (10k warm-up steps, then decay), 64 wide with 5x5
kernels and a 128-wide MLP (``model.preset=paper`` sets those widths, for a GPU); replab's
defaults are 16 wide with 3x3 kernels, so that a CPU shows learning in minutes.
"""

from __future__ import annotations

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
class SlotAttentionConfig(Presets):
    num_slots: int = param(4, min=1, help="K: the objects and the background")
    slot_dim: int = param(32, min=4, help="D: width of the slots and the attention")
    conv_width: int = param(16, min=4, help="channels of the encoder's and decoder's convolutions")
    kernel: int = param(3, min=1, help="the encoder's kernel (the paper's is 5)")
    iterations: int = param(3, min=1)
    mlp_hidden: int = param(64, min=4)
    epsilon: float = param(1e-8, min=0.0, help="added to the attention before it is normalised")
    implicit: bool = param(
        True, help="backpropagate through the last iteration only (Chang et al. 2022)"
    )
    straight_through: bool = param(
        True, help="implicit: pass the gradient on to the initial slots (BO-QSA), else fix them"
    )
    preset: str = param("cpu", choices=["cpu", "paper"], help="paper: the paper's widths (a GPU)")

    PRESETS = {
        "cpu": {},
        "paper": {"slot_dim": 64, "conv_width": 64, "kernel": 5, "mlp_hidden": 128},
    }  # fmt: skip


def position_ramps(height: int, width: int) -> torch.Tensor:
    """[4, H, W]: x, 1 - x, y, 1 - y, each in [0, 1] (the soft position embedding's input)."""
    y = torch.linspace(0.0, 1.0, height)[:, None].expand(height, width)
    x = torch.linspace(0.0, 1.0, width)[None, :].expand(height, width)
    return torch.stack([x, 1 - x, y, 1 - y])


class SlotAttentionModule(nn.Module):
    """The iterative attention: inputs [B, N, D] -> slots [B, K, D] (and the last attention)."""

    def __init__(self, cfg: SlotAttentionConfig):
        super().__init__()
        d = cfg.slot_dim
        self.cfg = cfg
        self.norm_inputs, self.norm_slots, self.norm_mlp = (nn.LayerNorm(d) for _ in range(3))
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.gru = nn.GRUCell(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_hidden), nn.ReLU(),
                                 nn.Linear(cfg.mlp_hidden, d))  # fmt: skip

    def forward(self, inputs: torch.Tensor, slots: torch.Tensor):
        b, k, d = slots.shape
        inputs = self.norm_inputs(inputs)
        keys, values = self.k(inputs), self.v(inputs)
        init = slots
        for i in range(self.cfg.iterations):
            if self.cfg.implicit and i == self.cfg.iterations - 1 and i > 0:
                # the fixed point's first-order gradient; the straight-through term (zero in
                # value) passes it on to the initial slots, whose Gaussian then still learns
                slots = slots.detach()
                if self.cfg.straight_through:
                    slots = slots + init - init.detach()
            previous = slots
            q = self.q(self.norm_slots(slots))
            attn = torch.softmax(keys @ q.transpose(1, 2) / d**0.5, dim=2)  # [B, N, K]
            weights = attn + self.cfg.epsilon
            weights = weights / weights.sum(1, keepdim=True)
            updates = weights.transpose(1, 2) @ values  # [B, K, D]
            slots = self.gru(updates.reshape(-1, d), previous.reshape(-1, d)).reshape(b, k, d)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attn


def _convs(widths: list[int], kernel: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Conv2d(a, b, kernel, padding=kernel // 2))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register_method("slot_attention", pillar="generative")
class SlotAttention(Method, Encoder, Segmenter):
    """Slots that compete for pixels; each decoded to an object and its mask."""

    Config = SlotAttentionConfig
    accepts = Images()
    # The paper warms up, then halves the rate every 100k steps, far beyond a CPU run of a few
    # thousand steps: here the decay is a cosine to zero over the run's own steps, so that the
    # slots settle by its end instead of wandering at the full rate (the README has the runs).
    train_defaults = {"optimizer": "adam", "lr": 4e-4, "batch_size": 32, "warmup_steps": 200,
                      "schedule": "cosine", "weight_decay": 0.0}  # fmt: skip

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, h, w = info.shape
        d = cfg.slot_dim
        self.register_buffer("ramps", position_ramps(h, w), persistent=False)
        cw = cfg.conv_width
        self.cnn = nn.Sequential(_convs([c, cw, cw, cw, d], cfg.kernel), nn.ReLU())
        self.enc_pos = nn.Conv2d(4, d, 1)
        self.enc_mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.slot_mu = nn.Parameter(torch.randn(1, 1, d) * d**-0.5)
        self.slot_log_sigma = nn.Parameter(torch.full((1, 1, d), -1.0))
        self.attention = SlotAttentionModule(cfg)
        if cfg.implicit and not cfg.straight_through and cfg.iterations > 1:
            # no gradient reaches the initial slots' Gaussian: it stays as drawn (and DDP is
            # not asked to wait for gradients that never come)
            self.slot_mu.requires_grad_(False)
            self.slot_log_sigma.requires_grad_(False)
        # the decoder broadcasts each slot on a grid a quarter of the image's side and upsamples
        # twice (the paper's broadcast-then-upsample decoder; full-resolution broadcasting cost
        # four times the compute on a CPU)
        self.broadcast = (-(-h // 4), -(-w // 4))
        self.register_buffer("dec_ramps", position_ramps(*self.broadcast), persistent=False)
        self.dec_pos = nn.Conv2d(4, d, 1)
        up = {"kernel_size": 5, "stride": 2, "padding": 2, "output_padding": 1}
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(d, cw, **up), nn.ReLU(),
            nn.ConvTranspose2d(cw, cw, **up), nn.ReLU(),
            nn.Conv2d(cw, cw, 3, padding=1), nn.ReLU(),
            nn.Conv2d(cw, c + 1, 3, padding=1),
        )  # fmt: skip

    def slots(self, x: torch.Tensor) -> torch.Tensor:
        """The slots [B, K, D] of a batch of images."""
        b = x.shape[0]
        h = self.cnn(x) + self.enc_pos(self.ramps[None].to(x.dtype))
        inputs = self.enc_mlp(h.flatten(2).transpose(1, 2))  # [B, N, D]
        shape = (b, self.cfg.num_slots, self.cfg.slot_dim)
        if self.training:
            noise = self.draw_normal(torch.empty(shape, device=x.device, dtype=x.dtype))
        else:  # one fixed draw for every image: ``encode`` and ``masks`` are functions of it
            g = torch.Generator(device=x.device).manual_seed(0)
            noise = torch.randn((1, *shape[1:]), generator=g, device=x.device, dtype=x.dtype)
            noise = noise.expand(shape)
        init = self.slot_mu + self.slot_log_sigma.exp() * noise
        return self.attention(inputs, init)[0]

    def decode_slots(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-slot colours [B, K, C, H, W] and masks [B, K, 1, H, W] (a softmax over slots)."""
        b, k, d = slots.shape
        _, h, w = self.ramps.shape
        grid = slots.reshape(b * k, d, 1, 1) + self.dec_pos(self.dec_ramps[None].to(slots.dtype))
        out = self.decoder(grid)[:, :, :h, :w].reshape(b, k, -1, h, w)
        colours, logits = out[:, :, :-1], out[:, :, -1:]
        return colours, torch.softmax(logits, dim=1)

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        colours, masks = self.decode_slots(self.slots(x))
        return masks.squeeze(2), colours

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        s = self.slots(x)
        return torch.cat([s.mean(1), s.amax(1)], dim=1)

    def loss(self, batch, step):
        x = batch["x"]
        colours, masks = self.decode_slots(self.slots(x))
        recon = (colours * masks).sum(1)
        mse = F.mse_loss(recon, x)
        return {"loss": mse, "mse": mse}
