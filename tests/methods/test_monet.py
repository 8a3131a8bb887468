"""MONet: the stick-breaking scopes and masks sum to one, the loss is the mixture likelihood and
the two KLs computed by hand, and training resumes bit for bit."""

import math

import numpy as np
import pytest
import torch

from replab.data import make_dataset
from replab.methods import configure, method_class


@pytest.fixture(scope="module")
def tetrominoes():
    return make_dataset("tetrominoes")


def model(data, **overrides):
    torch.manual_seed(0)
    return method_class("monet")(configure("monet", "tetrominoes", overrides=overrides).model,
                                 data.info)  # fmt: skip


def test_scopes_and_masks_sum_to_one_at_every_pixel(tetrominoes):
    m = model(tetrominoes, num_slots=5)
    x = tetrominoes.get_batch(np.arange(3))["x"]
    with torch.no_grad():
        log_masks, log_scopes = m.log_masks(x)
    masks, scopes = log_masks.exp(), log_scopes.exp()
    assert masks.shape == (3, 5, 35, 35)
    torch.testing.assert_close(masks.sum(1), torch.ones(3, 35, 35))
    torch.testing.assert_close(scopes[:, 0], torch.ones(3, 35, 35))  # s_0 = 1
    # the scope each step starts from is what the masks from that step on share out
    for k in range(5):
        torch.testing.assert_close(scopes[:, k], masks[:, k:].sum(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.masks(x), masks)


def test_the_loss_is_the_mixture_likelihood_and_the_two_kls_by_hand(tetrominoes):
    m = model(tetrominoes, num_slots=3, beta=0.25, gamma=2.0).eval()
    x = tetrominoes.get_batch(np.arange(2))["x"]
    with torch.no_grad():
        out = m({"x": x}, 0, noise=torch.zeros_like)
        masks, colours = m.decompose(x)  # z = the posterior means: zero noise
        log_masks, _ = m.log_masks(x)
        mu, logvar, _, mask_logits = m._slots(x, log_masks, sample=False)
    sigmas = torch.tensor([0.09, 0.11, 0.11]).view(1, 3, 1, 1, 1)
    density = torch.exp(-0.5 * ((x[:, None] - colours) / sigmas) ** 2) / (
        sigmas * math.sqrt(2 * math.pi)
    )
    per_pixel = (masks * density.double().prod(2)).sum(1)  # [B, H, W]
    nll = -per_pixel.log().sum((1, 2))
    kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum((1, 2))
    decoded = torch.softmax(mask_logits, 1)
    mask_kl = (masks * (masks.log() - decoded.log())).sum((1, 2, 3))
    want = (nll + 0.25 * kl + 2.0 * mask_kl).mean()
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-4)
    assert out["nll"].item() == pytest.approx(nll.mean().item(), rel=1e-4)


def test_training_resumes_bit_for_bit(resume_is_exact):
    few = {"train.steps": 4, "train.batch_size": 4, "train.checkpoint_every": 2}
    resume_is_exact(configure("monet", "tetrominoes", overrides=few), stop=2)
