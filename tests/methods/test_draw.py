"""DRAW: its filterbanks by hand, attention that reads and writes the whole image exactly, and
the loss against an independent ELBO."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence
from typer.testing import CliRunner

from replab.cli import app
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.draw import filterbanks
from replab.run import build_model


def filterbank_by_hand(gx_, gy_, log_var, log_delta, n, height, width):
    """Equations 19-22 of the paper, one filter and one pixel at a time (pixels from 1)."""
    gx = (width + 1) / 2 * (gx_ + 1)
    gy = (height + 1) / 2 * (gy_ + 1)
    delta = (max(height, width) - 1) / (n - 1) * math.exp(log_delta)
    var = math.exp(log_var)

    def bank(g, size):
        f = np.zeros((n, size))
        for i in range(1, n + 1):
            mu = g + (i - n / 2 - 0.5) * delta
            for a in range(1, size + 1):
                f[i - 1, a - 1] = math.exp(-((a - mu) ** 2) / (2 * var))
            f[i - 1] /= f[i - 1].sum()
        return f

    return bank(gy, height), bank(gx, width)


def test_filterbanks_match_the_papers_equations():
    params = torch.tensor([[0.3, -0.5, 0.4, -0.2, 0.1], [-0.9, 0.2, -1.0, 0.5, -0.3]])
    fy, fx, gamma = filterbanks(params, n=3, height=7, width=10)
    assert fy.shape == (2, 3, 7) and fx.shape == (2, 3, 10)
    for b, p in enumerate(params.tolist()):
        want_y, want_x = filterbank_by_hand(p[0], p[1], p[2], p[3], 3, 7, 10)
        np.testing.assert_allclose(fy[b].numpy(), want_y, atol=1e-6)
        np.testing.assert_allclose(fx[b].numpy(), want_x, atol=1e-6)
        assert gamma[b].item() == pytest.approx(math.exp(p[4]))


def _model(shape=(1, 6, 6), **overrides):
    cfg = configure("draw", "digits", overrides=overrides)
    return build_model(cfg, DataInfo(shape=shape)).eval()


def _attend_everywhere(linear: torch.nn.Linear, size: int):
    """Attention parameters that put one narrow filter on every pixel: centre g~ = 0, stride 1
    (delta~ = 0 when N = size), variance exp(-8), gamma 1, whatever h_dec is."""
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.tensor([0.0, 0.0, -8.0, 0.0, 0.0]))


def test_attention_on_every_pixel_reads_and_writes_the_image_itself():
    model = _model(attention=True, read_n=6, write_n=6)
    _attend_everywhere(model.to_read_attention, 6)
    _attend_everywhere(model.to_write_attention, 6)
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    x_hat = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    h = torch.randn(2, model.cfg.hidden)
    glimpse = model.read(x, x_hat, h)
    assert torch.allclose(glimpse, torch.cat([x.flatten(1), x_hat.flatten(1)], 1), atol=1e-4)
    with torch.no_grad():  # the write layer emits the image itself: the canvas gets exactly it
        model.to_write.weight.zero_()
        model.to_write.bias.copy_(x[0].flatten())
    assert torch.allclose(model.write(h), x[0].expand(2, 1, 6, 6), atol=1e-4)


@pytest.mark.parametrize("attention", [True, False])
def test_loss_is_the_negative_elbo_computed_independently(monkeypatch, attention):
    model = _model(shape=(3, 8, 8), attention=attention, steps=4, latent_dim=3, hidden=16)
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    # with zero noise every z_t is the posterior mean, so the pass equals ``reconstruct``'s
    monkeypatch.setattr(model, "draw_normal", lambda like: torch.zeros_like(like))
    logs = model.loss({"x": x}, step=0)
    p = model.reconstruct(x).double()
    recon = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean()
    _, mean, logvar = model._draw(x, sample=False)
    q = Normal(mean.double(), (0.5 * logvar.double()).exp())
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum((1, 2)).mean()
    assert logs["recon"].item() == pytest.approx(recon.item(), rel=1e-4)
    assert logs["kl"].item() == pytest.approx(kl.item(), rel=1e-4)
    assert logs["loss"].item() == pytest.approx((recon + kl).item(), rel=1e-4)
    assert mean.shape == (5, 4, 3)


@pytest.mark.parametrize("attention", [True, False])
def test_encode_is_the_means_and_decode_needs_only_them(attention):
    model = _model(shape=(1, 8, 8), attention=attention, steps=3, latent_dim=4, hidden=16)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (4, 12)
        assert torch.equal(model.encode(x), z)  # deterministic: no sampling
        assert torch.allclose(model.decode(z), model.reconstruct(x), atol=1e-6)
        assert model.sample(3).shape == (3, 1, 8, 8)
        assert model.latent_kl(x).shape == (12,)


def test_refuses_data_that_is_not_images(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "draw", "--data", "tones", "--out", str(tmp_path / "run"), "-q"]
    )
    assert result.exit_code == 2
    assert "draw needs images" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
