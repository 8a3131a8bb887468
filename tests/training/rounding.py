"""How far two runs of the same computation may drift when only the order of float sums differs
(another memory layout, vmap's batched kernels, another CPU's matrix-product blocking).

A bound that holds on any CPU, from Adam's update rule rather than from one machine's figures:
Adam moves a weight by at most lr (1 - beta1) / sqrt(1 - beta2) per step (Kingma and Ba 2015,
section 2.1), so two runs that round one gradient differently can end up at most twice that apart
per step. Most weights come nowhere near it: a relative rounding error of about 1e-6 in a
gradient changes Adam's ratio m / sqrt(v) by about as much, so only weights whose gradient is
about zero, where rounding can flip its sign, move by a whole step; and a weight with about zero
gradient barely changes the loss. Hence: every weight within the bound, and all but a small share
within 1e-6.
"""

from __future__ import annotations

import math

import torch

SHARE_ALLOWED_ABOVE_1E6 = 0.01


def adam_bound(steps: int, lr: float, betas=(0.9, 0.999)) -> float:
    """The largest distance two Adam runs of ``steps`` steps can end apart per weight."""
    b1, b2 = betas
    per_step = lr * max(1.0, (1 - b1) / math.sqrt(1 - b2))
    return 2 * steps * per_step


def assert_equal_up_to_summation_order(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], steps: int, lr: float
) -> None:
    assert a.keys() == b.keys()
    bound = adam_bound(steps, lr)
    far, total = 0, 0
    for k in a:
        diff = (a[k].float() - b[k].float()).abs()
        assert diff.max().item() <= bound, (k, diff.max().item(), bound)
        far += int((diff > 1e-6).sum())
        total += diff.numel()
    assert far <= SHARE_ALLOWED_ABOVE_1E6 * total, f"{far} of {total} weights differ by > 1e-6"
