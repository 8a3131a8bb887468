"""The Generative Query Network (Eslami et al. 2018): a scene representation from a few posed
views, trained by rendering the scene from a new viewpoint.

Representation: the "tower" network maps each context view and its pose (7 numbers, broadcast
over the feature map) to ``r_i`` [R, g, g]; the scene's ``r`` is their sum, so it does not depend
on the order of the views, and zero views give the empty representation r = 0.

Generator: ConvDRAW over ``steps`` L, with one shared generation core and one shared inference
core (ConvLSTMs on the g x g grid, g = image side / ``stride``). At step l the prior
``p(z_l | h_g)`` and, in training, the posterior ``q(z_l | h_e)`` are diagonal Gaussians from 5x5
convolutions; the inference core reads the query image (a strided convolution of it), the query
pose, ``r`` and ``h_g``; the generation core reads ``z_l``, the query pose and ``r``; each step
adds the upsampled ``h_g`` to a full-resolution canvas ``u``, and the predicted view is
``sigmoid(conv(u))``. The loss is the negative ELBO of the query view, in nats per pixel value:

    [ -log N(x_q | mu, sigma_t^2) + sum_l KL(q(z_l) || p(z_l)) ] / (C H W)

with the pixel sigma annealed linearly from ``sigma_start`` to ``sigma_end`` over the run (the
paper: 2.0 to 0.7 over 200k steps). Each step draws, per batch, how many context views to show
(1 to ``context_views``, as the paper does) and, per scene, which views are context and which is
the query, from ``(seed, step)``.

The paper's sizes (``model.preset=paper``: stride 4, tower and cores of 256/128 channels, 5x5
kernels, L = 12) are for a GPU; replab's defaults (stride 8, a 32-wide tower giving 64 channels,
32-wide cores, 3x3, L = 4) train on a CPU in minutes. ``represent`` is the scene code (``r``
flattened); ``predict_views`` renders query poses from the prior's means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import Presets, param
from replab.methods.base import Method
from replab.methods.capabilities import ViewPredictor
from replab.methods.inputs import PosedViews
from replab.nn.views import step_generator
from replab.registry import register_method

POSE_DIM = 7


@dataclass
class GQNConfig(Presets):
    context_views: int = param(5, min=1, help="most context views per scene (1 to this drawn)")
    representation: int = param(64, min=1, help="R: channels of the scene representation")
    tower_width: int = param(32, min=1, help="channels inside the representation network")
    hidden: int = param(32, min=1, help="channels of the ConvLSTM cores and the canvas")
    latent: int = param(8, min=1, help="channels of z at each grid location")
    steps: int = param(4, min=1, help="L: ConvDRAW steps (the paper's 12)")
    stride: int = param(8, choices=[4, 8, 16], help="pixels per grid location (the paper's 4)")
    kernel: int = param(3, choices=[3, 5], help="the cores' kernel (the paper's 5)")
    sigma_start: float = param(2.0, min=1e-3, help="the pixel sigma at step 0")
    sigma_end: float = param(0.7, min=1e-3, help="the pixel sigma at the run's last step")
    preset: str = param("cpu", choices=["cpu", "paper"], help="paper: the paper's sizes (a GPU)")

    PRESETS = {
        "cpu": {},
        "paper": {"representation": 256, "tower_width": 256, "hidden": 128, "latent": 3,
                  "steps": 12, "stride": 4, "kernel": 5},
    }  # fmt: skip


def broadcast_pose(pose: torch.Tensor, size: int) -> torch.Tensor:
    """Poses [B, 7] as feature maps [B, 7, size, size]."""
    return pose[:, :, None, None].expand(-1, -1, size, size)


class Tower(nn.Module):
    """One view and its pose to r_i [R, g, g]: strided 2x2 convolutions down to the grid (with a
    residual 3x3 at each scale, as the paper's tower), the pose joined there, then 3x3 and a 1x1
    to R channels."""

    def __init__(self, channels: int, width: int, out: int, stride: int):
        super().__init__()
        halvings = stride.bit_length() - 1  # log2(stride)
        self.downs = nn.ModuleList(
            nn.Conv2d(channels if i == 0 else width, width, 2, stride=2) for i in range(halvings)
        )
        self.skips = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in self.downs)
        self.joint = nn.Conv2d(width + POSE_DIM, width, 3, padding=1)
        self.out = nn.Conv2d(width, out, 1)

    def forward(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        for down, skip in zip(self.downs, self.skips, strict=True):
            x = F.relu(down(x))
            x = x + F.relu(skip(x))
        x = F.relu(self.joint(torch.cat([x, broadcast_pose(pose, x.shape[-1]).to(x.dtype)], 1)))
        return self.out(x)


class ConvLSTM(nn.Module):
    def __init__(self, inputs: int, hidden: int, kernel: int):
        super().__init__()
        self.gates = nn.Conv2d(inputs + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) per example, summed over the rest."""
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)
    return kl.flatten(1).sum(1)


@register_method("gqn", pillar="generative")
class GQN(Method, ViewPredictor):
    """Scene representations from posed views, trained to render unseen views (ConvDRAW)."""

    Config = GQNConfig
    accepts = PosedViews(min_views=2)
    # The paper: Adam, lr annealed from 5e-4 to 5e-5 over 1.6M steps, batch 36.
    train_defaults = {"optimizer": "adam", "lr": 5e-4, "batch_size": 16, "schedule": "cosine",
                      "min_lr_ratio": 0.1, "weight_decay": 0.0}  # fmt: skip

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        _, c, h, _ = info.shape
        self.grid = h // cfg.stride
        r, hid, z = cfg.representation, cfg.hidden, cfg.latent
        self.tower = Tower(c, cfg.tower_width, r, cfg.stride)
        self.read_query = nn.Conv2d(c, hid, cfg.stride, stride=cfg.stride)
        self.inference = ConvLSTM(hid + hid + POSE_DIM + r, hid, cfg.kernel)
        self.generation = ConvLSTM(z + POSE_DIM + r, hid, cfg.kernel)
        self.posterior = nn.Conv2d(hid, 2 * z, 5, padding=2)
        self.prior = nn.Conv2d(hid, 2 * z, 5, padding=2)
        self.paint = nn.ConvTranspose2d(hid, hid, cfg.stride, stride=cfg.stride)
        self.to_image = nn.Conv2d(hid, c, 1)

    @classmethod
    def data_problem(cls, info, cfg):
        problem = super().data_problem(info, cfg)
        if problem is None:
            _, _, h, w = info.shape
            if h != w or h % cfg.stride:
                return f"needs square views whose side divides by stride {cfg.stride}, got {h}x{w}"
        return problem

    def represent_grid(self, views: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """The scene's r [B, R, g, g]: the sum over its context views [B, K, C, H, W] (K >= 0)."""
        b, k = views.shape[:2]
        if k == 0:
            return views.new_zeros(b, self.cfg.representation, self.grid, self.grid)
        per_view = self.tower(views.flatten(0, 1), poses.flatten(0, 1))
        return per_view.view(b, k, *per_view.shape[1:]).sum(1)

    def represent(self, views, poses):
        return self.represent_grid(views, poses).flatten(1)

    def _draw(self, r, query_pose, query=None):
        """ConvDRAW: the predicted view's mean [B, C, H, W] and the summed KL [B] (zero without
        a query image, when z is the prior's mean)."""
        b = r.shape[0]
        g, hid = self.grid, self.cfg.hidden
        v = broadcast_pose(query_pose, g).to(r.dtype)
        h_g = c_g = h_e = c_e = r.new_zeros(b, hid, g, g)
        canvas = r.new_zeros(b, hid, g * self.cfg.stride, g * self.cfg.stride)
        kl = r.new_zeros(b, dtype=torch.float32)
        seen = self.read_query(query) if query is not None else None
        for _ in range(self.cfg.steps):
            mu_p, logvar_p = self.prior(h_g).chunk(2, 1)
            if seen is None:
                z = mu_p
            else:
                h_e, c_e = self.inference(torch.cat([seen, h_g, v, r], 1), (h_e, c_e))
                mu_q, logvar_q = self.posterior(h_e).chunk(2, 1)
                z = mu_q + (0.5 * logvar_q).exp() * self.draw_normal(mu_q)
                kl = kl + gaussian_kl(
                    mu_q.float(), logvar_q.float(), mu_p.float(), logvar_p.float()
                )
            h_g, c_g = self.generation(torch.cat([z, v, r], 1), (h_g, c_g))
            canvas = canvas + self.paint(h_g)
        return torch.sigmoid(self.to_image(canvas)), kl

    def predict_views(self, views, poses, query_poses):
        r = self.represent_grid(views, poses)
        b, q = query_poses.shape[:2]
        r = r[:, None].expand(-1, q, -1, -1, -1).flatten(0, 1)
        mean, _ = self._draw(r, query_poses.flatten(0, 1))
        return mean.view(b, q, *mean.shape[1:])

    def pixel_sigma(self, step: int) -> float:
        done = min(1.0, step / max(1, self.total_steps - 1))
        return self.cfg.sigma_start + (self.cfg.sigma_end - self.cfg.sigma_start) * done

    def loss(self, batch, step):
        x, pose = batch["x"], batch["pose"]
        b, views = x.shape[:2]
        g = step_generator(self.seed, step)
        k = int(torch.randint(1, min(self.cfg.context_views, views - 1) + 1, (), generator=g))
        order = torch.rand(b, views, generator=g).argsort(1).to(x.device)
        rows = torch.arange(b, device=x.device)[:, None]
        context, query = order[:, :k], order[:, k]
        r = self.represent_grid(x[rows, context], pose[rows, context])
        target = x[rows[:, 0], query]
        mean, kl = self._draw(r, pose[rows[:, 0], query], target)
        sigma = self.pixel_sigma(step)
        pixels = target[0].numel()
        nll = (0.5 * ((target.float() - mean.float()) / sigma) ** 2).flatten(1).sum(1)
        nll = nll + pixels * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
        return {
            "loss": (nll + kl).mean() / pixels,
            "kl": kl.mean().detach() / pixels,
            "mse": F.mse_loss(mean.float(), target.float()).detach(),
            "sigma": torch.tensor(sigma),
            "context": torch.tensor(float(k)),
        }
