"""White-box and black-box L-infinity attacks on a classifier of images in [0, 1].

Pure functions of a differentiable ``logits(x)`` (here a linear probe on a frozen encoder), a
batch of images and their labels; randomness only from an explicit ``torch.Generator``. Written
in plain PyTorch (a few dozen lines) rather than taken from an attack library, which would pull
torchvision.

- :func:`fgsm` (Goodfellow et al. 2015): one step of size epsilon along the sign of the loss's
  gradient: ``x + eps sign(grad_x CE(logits(x), y))``, clipped to [0, 1].
- :func:`pgd` (Madry et al. 2018): a uniform random start in the epsilon-ball, then ``steps``
  signed-gradient steps of ``eps / 4``, each projected back onto the ball and onto [0, 1].
- :func:`random_sign_attack`: a gradient-free check. Each query is a random corner of the
  epsilon-ball (``x + eps * s``, s uniform in {-1, 1}^d); an image counts as broken when any of
  ``queries`` corners is misclassified. When it breaks clearly more images than PGD does, the
  gradients are masked (flat, saturated or not flowing) and the white-box figure is too kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Logits = Callable[[torch.Tensor], torch.Tensor]


def _loss_gradient(logits: Logits, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d/dx of the summed cross-entropy (each image's own gradient: the sum separates)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(logits(x), y, reduction="sum")
        if not loss.requires_grad:  # an encoder that cuts the graph: no gradient to follow
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        return torch.zeros_like(x)
    return grad


def fgsm(logits: Logits, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The fast gradient sign method: one step of ``eps`` up the loss, clipped to [0, 1]."""
    if eps == 0:
        return x.clone()
    return (x + eps * _loss_gradient(logits, x, y).sign()).clamp(0.0, 1.0)


def pgd(
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent on the loss, with a random start; step size ``eps / 4``."""
    if eps == 0:
        return x.clone()
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    adv = (x + eps * (2 * noise - 1)).clamp(0.0, 1.0)
    for _ in range(steps):
        adv = adv + (eps / 4) * _loss_gradient(logits, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0.0, 1.0)
    return adv.detach()


def random_sign_attack(
    logits: Logits,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    queries: int = 200,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Per image, whether any of ``queries`` random corners of the eps-ball is misclassified
    (bool [n]); the clean image counts as a query."""
    with torch.no_grad():
        broken = logits(x).argmax(1) != y
        per_round = max(1, batch_size // max(len(x), 1))
        done = 0
        while done < queries and not bool(broken.all()):
            r = min(per_round, queries - done)
            signs = torch.randint(0, 2, (r, *x.shape), generator=generator).to(x) * 2 - 1
            corners = (x[None] + eps * signs).clamp(0.0, 1.0).reshape(-1, *x.shape[1:])
            wrong = logits(corners).argmax(1).reshape(r, len(x)) != y[None]
            broken |= wrong.any(0)
            done += r
    return broken


def accuracy(logits: Logits, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return int((logits(x).argmax(1) == y).sum()) / max(len(y), 1)


def curve_area(epsilons: Sequence[float], accuracies: Sequence[float]) -> float:
    """The area under accuracy against epsilon (trapezoids), divided by the epsilon range: the
    mean accuracy over [min eps, max eps]; with one epsilon, that accuracy."""
    eps = np.asarray(epsilons, dtype=float)
    acc = np.asarray(accuracies, dtype=float)
    if len(eps) < 2 or eps[-1] == eps[0]:
        return float(acc.mean())
    return float(np.sum((acc[1:] + acc[:-1]) / 2 * np.diff(eps)) / (eps[-1] - eps[0]))


def parse_epsilons(text: str) -> tuple[float, ...]:
    """``"0,1,2,4,8,16"`` (in units of 1/255) -> sorted distinct floats; ValueError (one line)
    for anything that is not a list of numbers in [0, 255]."""
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            v = float(item)
        except ValueError:
            raise ValueError(f"epsilons must be numbers (in 1/255), got {item!r}") from None
        if not np.isfinite(v) or not 0 <= v <= 255:
            raise ValueError(f"epsilons must lie in [0, 255] (units of 1/255), got {item!r}")
        values.append(v)
    if not values:
        raise ValueError("epsilons: give at least one number")
    return tuple(sorted(set(values)))
