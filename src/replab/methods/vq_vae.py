"""VQ-VAE (van den Oord, Vinyals and Kavukcuoglu, 2017): a grid of discrete codes from a codebook.

The encoder maps x to a grid of D-dimensional vectors z_e; each is replaced by its nearest entry
of a codebook {e_1, ..., e_K}; the decoder reconstructs x from the quantised grid z_q. The
gradient skips the non-differentiable lookup (straight-through: the decoder's gradient at z_q is
passed to z_e unchanged). The codebook learns either by its own loss or, as in the paper's
appendix, by exponential moving averages of the encoder outputs assigned to each code.

Codes that no encoder output chose for ``dead_code_steps`` training steps are restarted from
random encoder outputs of the current batch (the usual fix for codebook collapse). Every code
starts as "dead", so the first training step initialises the codebook from encoder outputs.

Why our own quantiser and not ``vector-quantize-pytorch``: that library is well kept, but it pulls
four more packages (einops, einx, loguru, torch-einops-utils) and requires torch >= 2.4, and its
dead-code rule is a threshold on the EMA cluster size rather than "unused for N steps". The whole
quantiser is about 80 lines here, and the tests check each formula against a hand computation,
which needs its internals in plain view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Decoder, Encoder
from replab.methods.inputs import Images
from replab.registry import register_method


@dataclass
class VQVAEConfig:
    num_codes: int = param(512, min=2, help="K, codebook size (van den Oord et al. 2017: 512)")
    code_dim: int = param(64, min=1, help="D, size of each code (the authors' Sonnet example)")
    downsample: int = param(2, min=1, help="stride-2 convs; grid = input / 2**n (paper: 2)")
    hidden: int = param(128, min=2, help="conv channels (paper, ImageNet: 256; Sonnet: 128)")
    residual_hidden: int = param(32, min=1, help="residual block bottleneck (Sonnet example: 32)")
    residual_layers: int = param(2, min=0, help="residual blocks (paper: 2)")
    beta: float = param(0.25, min=0.0, help="commitment cost (paper: 0.25)")
    codebook_update: str = param("loss", choices=["loss", "ema"], help="paper: loss; ema: A.1")
    decay: float = param(0.99, min=0.0, max=1.0, help="EMA decay gamma (paper: 0.99)")
    epsilon: float = param(1e-5, min=0.0, help="Laplace smoothing of EMA counts (Sonnet)")
    dead_code_steps: int = param(
        100, min=0, help="restart codes unused this long; 0: never (replab)"
    )
    reconstruction: str = param("mse", choices=["mse", "bernoulli"], help="mse on sigmoid output")
    pooled: bool = param(False, help="encode = mean of the quantised grid (D dims), for big grids")


def _distributed() -> bool:
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code to each row: argmin_k ||z - e_k||^2 = ||z||^2 - 2 z.e_k + ||e_k||^2
    (ties go to the lowest index), computed in float32 whatever the autocast."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        z, e = z.float(), codebook.float()
        d = z.pow(2).sum(1, keepdim=True) - 2.0 * z @ e.t() + e.pow(2).sum(1)[None]
    return d.argmin(1)


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(-sum_k p_k log p_k), p_k = share of vectors assigned to code k: the effective number of
    codes in use (1 when one code takes all, K when all are used equally)."""
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class VectorQuantizer(nn.Module):
    """Codebook of K vectors of size D, nearest-neighbour lookup, usage counts and restarts."""

    def __init__(
        self,
        num_codes: int,
        dim: int,
        *,
        ema: bool = False,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_steps: int = 100,
    ):
        super().__init__()
        self.num_codes, self.dim, self.ema = num_codes, dim, ema
        self.decay, self.epsilon, self.dead_code_steps = decay, epsilon, dead_code_steps
        init = torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if ema:
            self.register_buffer("codebook", init)
            # N_k and m_k start as one vector at e_k each, so e_k = m_k / N_k holds from step 0
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # steps since each code was last chosen; all "dead" at first: the first training step
        # initialises the codebook from encoder outputs (when restarts are on)
        self.register_buffer("unused_steps", torch.full((num_codes,), dead_code_steps))

    def dead_codes(self) -> torch.Tensor:
        if self.dead_code_steps <= 0:
            return torch.zeros(0, dtype=torch.long, device=self.unused_steps.device)
        return torch.nonzero(self.unused_steps >= self.dead_code_steps).flatten()

    @torch.no_grad()
    def restart_dead(self, z: torch.Tensor) -> int:
        """Re-initialise codes unused for ``dead_code_steps`` steps from random rows of ``z``
        (encoder outputs of this batch); returns how many were restarted."""
        dead = self.dead_codes()
        if len(dead) == 0:
            return 0
        rows = torch.randint(0, len(z), (len(dead),), device=z.device)
        new = z[rows].to(self.codebook.dtype)
        if _distributed():  # every process takes rank 0's choice, so the codebooks stay equal
            tdist.broadcast(new, 0)
        self.codebook.data[dead] = new
        if self.ema:
            self.ema_count[dead] = 1.0
            self.ema_sum[dead] = new
        self.unused_steps[dead] = 0
        return len(dead)

    @torch.no_grad()
    def record_usage(self, counts: torch.Tensor) -> None:
        self.unused_steps.copy_(torch.where(counts > 0, 0, self.unused_steps + 1))

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor) -> None:
        """The paper's appendix A.1, with Sonnet's Laplace smoothing of the counts:

        N_k <- gamma N_k + (1 - gamma) n_k;  m_k <- gamma m_k + (1 - gamma) sum_{i: k_i = k} z_i;
        e_k = m_k / N~_k,  N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j,

        n_k being the number of rows of ``z`` assigned to code k in this batch.
        """
        sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, z.to(self.ema_sum.dtype))
        if _distributed():
            tdist.all_reduce(sums)
        g = self.decay
        self.ema_count.mul_(g).add_(counts.to(self.ema_count.dtype), alpha=1 - g)
        self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.epsilon) / (n + self.num_codes * self.epsilon) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    def counts(self, idx: torch.Tensor) -> torch.Tensor:
        c = torch.bincount(idx, minlength=self.num_codes)
        if _distributed():
            tdist.all_reduce(c)
        return c

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.codebook)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Rows of ``z`` replaced by their nearest codes (no gradient, no statistics)."""
        return self.lookup(nearest_codes(z.detach(), self.codebook)).to(z.dtype)


class ResidualStack(nn.Module):
    """The paper's residual blocks: x + conv1x1(relu(conv3x3(relu(x)))), then a ReLU."""

    def __init__(self, channels: int, hidden: int, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, 3, 1, 1),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1),
            )
            for _ in range(layers)
        )

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return torch.relu(x)


def _grid_sizes(size: int, n: int) -> list[int]:
    """Sizes through n convolutions with kernel 4, stride 2, padding 1 (each floors size / 2)."""
    sizes = [size]
    for _ in range(n):
        sizes.append(sizes[-1] // 2)
    return sizes


class VQEncoder(nn.Module):
    """x [B, C, H, W] -> z_e [B, D, H / 2**n, W / 2**n]: strided convs, residual stack, 1x1 conv."""

    def __init__(self, shape, cfg: VQVAEConfig):
        super().__init__()
        c, h = shape[0], cfg.hidden
        chans = [h // 2] * (cfg.downsample - 1) + [h]
        layers, prev = [], c
        for ch in chans:
            layers += [nn.Conv2d(prev, ch, 4, 2, 1), nn.ReLU()]
            prev = ch
        layers += [
            nn.Conv2d(h, h, 3, 1, 1),
            ResidualStack(h, cfg.residual_hidden, cfg.residual_layers),
        ]
        layers.append(nn.Conv2d(h, cfg.code_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class VQDecoder(nn.Module):
    """z_q [B, D, h, w] -> logits [B, C, H, W], the encoder's mirror (exact odd sizes too)."""

    def __init__(self, shape, cfg: VQVAEConfig):
        super().__init__()
        c, h = shape[0], cfg.hidden
        sizes = _grid_sizes(shape[1], cfg.downsample)[::-1]  # smallest first
        layers = [
            nn.Conv2d(cfg.code_dim, h, 3, 1, 1),
            ResidualStack(h, cfg.residual_hidden, cfg.residual_layers),
        ]
        outs = [h // 2] * (cfg.downsample - 1) + [c]
        prev = h
        for i, (ch, size, target) in enumerate(zip(outs, sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.ConvTranspose2d(prev, ch, 4, 2, 1, output_padding=target - 2 * size))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
            prev = ch
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


def bits_per_value(x: torch.Tensor) -> int:
    """Bits to store one input value at a fixed length: 8 for uint8 tensors, 1 for binary images,
    else ceil(log2(number of distinct values in ``x``)), at most 8 (images in [0, 1] come from
    8-bit pixels; digits' 17 grey levels need 5)."""
    if x.dtype == torch.uint8:
        return 8
    levels = int(torch.unique(x).numel())
    return max(1, min(8, math.ceil(math.log2(max(levels, 2)))))


@register_method("vq_vae", pillar="generative")
class VQVAE(Method, Encoder, Decoder):
    """VQ-VAE (van den Oord et al.): a grid of discrete codes, straight-through gradients."""

    Config = VQVAEConfig
    accepts = Images()
    # the paper: Adam, learning rate 2e-4, batch size 128
    train_defaults = {
        "optimizer": "adam",
        "lr": 2e-4,
        "batch_size": 128,
        "schedule": "constant",
        "grad_clip": 0.0,
    }

    @classmethod
    def data_problem(cls, info, cfg):
        """Images with room for ``downsample`` stride-2 layers."""
        problem = super().data_problem(info, cfg)
        if problem is None and min(info.shape[1:]) < 2**cfg.downsample:
            h, w = info.shape[1:]
            return (
                f"needs images of at least {2**cfg.downsample} pixels for model.downsample="
                f"{cfg.downsample} stride-2 layers, got {h}x{w}"
            )
        return problem

    def __init__(self, cfg: VQVAEConfig, info):
        super().__init__(cfg, info)
        shape = tuple(info.shape)
        self.encoder = VQEncoder(shape, cfg)
        self.decoder = VQDecoder(shape, cfg)
        self.quantizer = VectorQuantizer(
            cfg.num_codes,
            cfg.code_dim,
            ema=cfg.codebook_update == "ema",
            decay=cfg.decay,
            epsilon=cfg.epsilon,
            dead_code_steps=cfg.dead_code_steps,
        )
        self.grid = (
            _grid_sizes(shape[1], cfg.downsample)[-1],
            _grid_sizes(shape[2], cfg.downsample)[-1],
        )

    # -- shapes: grid [B, D, h, w] <-> rows [B*h*w, D] <-> flat [B, D*h*w]

    def _rows(self, z: torch.Tensor) -> torch.Tensor:
        return z.permute(0, 2, 3, 1).reshape(-1, self.cfg.code_dim)

    def _grid(self, rows: torch.Tensor, batch: int) -> torch.Tensor:
        h, w = self.grid
        return rows.view(batch, h, w, self.cfg.code_dim).permute(0, 3, 1, 2)

    def quantized(self, x: torch.Tensor) -> torch.Tensor:
        """z_q [B, D, h, w] of ``x``, no gradient to the codebook, no statistics."""
        z_e = self.encoder(x)
        return self._grid(self.quantizer.quantize(self._rows(z_e)), len(x))

    def loss(self, batch, step):
        """L = recon(x, dec(z_q)) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (means over
        elements; the middle term is dropped with EMA updates), where the decoder sees
        z_q = sg[e] + z_e - sg[z_e], equal to e forward and to z_e backward (straight-through)."""
        x = batch["x"]
        z_e = self.encoder(x)
        rows = self._rows(z_e)
        restarted = self.quantizer.restart_dead(rows.detach()) if self.training else 0
        idx = nearest_codes(rows.detach(), self.quantizer.codebook)
        e = self.quantizer.lookup(idx).to(rows.dtype)
        commitment = F.mse_loss(rows, e.detach())
        if self.quantizer.ema:
            codebook = torch.zeros((), device=x.device)
        else:
            codebook = F.mse_loss(e, rows.detach())
        counts = self.quantizer.counts(idx)
        if self.training:
            self.quantizer.record_usage(counts)
            if self.quantizer.ema:
                self.quantizer.ema_update(rows.detach().float(), idx, counts)
        # straight-through, written so that the forward value is exactly e (sg[e] + 0) and the
        # gradient reaches z_e exactly as the decoder sends it, none of it reaching the codebook
        z_q = self._grid(e.detach() + (rows - rows.detach()), len(x))
        logits = self.decoder(z_q)
        if self.cfg.reconstruction == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(logits, x)
        else:
            recon = F.mse_loss(torch.sigmoid(logits), x)
        logs = {
            "loss": recon + codebook + self.cfg.beta * commitment,
            "recon": recon,
            "recon_mse": F.mse_loss(torch.sigmoid(logits.detach()), x),
            "codebook": codebook,
            "commitment": commitment,
            "perplexity": perplexity(counts),
            "codes_used": (counts > 0).float().mean(),
            "restarted": float(restarted),
            "compression_ratio": self.compression(x)["ratio"],
        }
        if self.cfg.dead_code_steps > 0:
            alive = self.quantizer.unused_steps < self.cfg.dead_code_steps
            logs["codes_alive"] = alive.float().mean()
        return logs

    def compression(self, x: torch.Tensor | None = None) -> dict[str, float]:
        """Bits of the discrete code (grid positions x log2 K) against the raw input's bits
        (C*H*W * bits per value, judged from ``x``: 1 for binary images; 8 without ``x``)."""
        h, w = self.grid
        code_bits = h * w * math.log2(self.cfg.num_codes)
        per_value = 8 if x is None else bits_per_value(x)
        input_bits = math.prod(self.info.shape) * per_value
        return {
            "code_bits": code_bits,
            "input_bits": float(input_bits),
            "bits_per_value": float(per_value),
            "ratio": input_bits / code_bits,
        }

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The discrete code of ``x``: indices [B, h, w] into the codebook."""
        idx = nearest_codes(self._rows(self.encoder(x)).detach(), self.quantizer.codebook)
        return idx.view(len(x), *self.grid)

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Quantised latents flattened [B, D*h*w] (channel-major): what ``decode`` takes."""
        return self.quantized(x).flatten(1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised latents, flattened, or (``pooled``) their mean over the grid [B, D]."""
        z_q = self.quantized(x)
        return z_q.mean(dim=(2, 3)) if self.cfg.pooled else z_q.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Flat latents [B, D*h*w] -> images in [0, 1]. Each position is snapped to its nearest
        code first: the decoder only ever saw codebook vectors."""
        h, w = self.grid
        grid = z.reshape(len(z), self.cfg.code_dim, h, w)
        rows = self.quantizer.quantize(self._rows(grid))
        return torch.sigmoid(self.decoder(self._grid(rows, len(z))))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.quantized(x)))

    def latent_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per flat latent, the smallest and largest value its codebook coordinate takes: a
        traversal inside that range walks through the codes (``decode`` snaps to them)."""
        cb = self.quantizer.codebook.detach()
        positions = self.grid[0] * self.grid[1]
        lo, hi = cb.min(0).values, cb.max(0).values
        return lo.repeat_interleave(positions), hi.repeat_interleave(positions)
