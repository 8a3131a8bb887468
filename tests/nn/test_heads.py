"""The joint-embedding heads: the momentum update, its schedule, the MLPs, batch norm."""

import math

import pytest
import torch
from torch import nn

from replab.nn.heads import GlobalBatchNorm1d, cosine_momentum, ema_update, mlp, momentum_copy


def test_the_momentum_update_is_exact():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    online(torch.randn(5, 3))  # moves the running statistics
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o, rtol=0, atol=1e-7)
    assert torch.equal(target[1].running_mean, online[1].running_mean)  # buffers copied


def test_the_momentum_rises_from_its_base_to_one_on_a_cosine():
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 50, 100) == pytest.approx(0.995)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0)
    expected = 1 - 0.01 * (math.cos(math.pi * 0.25) + 1) / 2
    assert cosine_momentum(0.99, 25, 100) == pytest.approx(expected)


def test_mlp_layers_and_the_final_norm():
    head = mlp([8, 16, 4])
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "GlobalBatchNorm1d", "ReLU", "Linear"]
    assert head[0].bias is None and head[3].bias is not None  # no bias before a batch norm
    normed = mlp([8, 16, 4], last_norm=True)
    assert type(normed[-1]).__name__ == "GlobalBatchNorm1d" and not normed[-1].affine


def test_global_batch_norm_in_one_process_is_batch_norm():
    torch.manual_seed(0)
    ours, theirs = GlobalBatchNorm1d(6), nn.BatchNorm1d(6)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(10, 6)
    assert torch.allclose(ours(x), theirs(x))
    assert torch.allclose(ours.running_var, theirs.running_var)
