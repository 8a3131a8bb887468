"""LARS (You et al. 2017), as solo-learn trains BYOL, MoCo v3, Barlow Twins and VICReg.

For each weight matrix p with gradient g (biases and normalisation parameters, which have one
dimension, are excluded from both the adaptation and the weight decay, solo-learn's
``exclude_bias_n_norm``):

    g <- g + wd p
    trust = eta ||p|| / ||g||            (1 when either norm is 0)
    trust <- min(trust / lr, 1)          ("clip_lr": the layer's rate never exceeds lr)
    buf <- momentum buf + trust g        (buf starts at 0)
    p <- p - lr buf
"""

from __future__ import annotations

import torch


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02):  # fmt: skip
        if lr < 0 or eta <= 0:
            raise ValueError(f"LARS: lr must be >= 0 and eta > 0, got {lr}, {eta}")
        super().__init__(params, {"lr": lr, "momentum": momentum,
                                  "weight_decay": weight_decay, "eta": eta})  # fmt: skip

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if p.ndim > 1:  # a weight matrix or kernel: decayed and adapted
                    g = g.add(p, alpha=group["weight_decay"])
                    p_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where(
                        (p_norm > 0) & (g_norm > 0), group["eta"] * p_norm / g_norm, 1.0
                    )
                    if lr > 0:
                        trust = torch.clamp(trust / lr, max=1.0)
                    g = g * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-lr)
        return loss
