import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import replab.methods.disentangling_vae as dvae  # registers the methods
from replab.config import ConfigError, TrainConfig
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.methods import configure
from replab.run import build_model, load
from replab.training.loop import Optimisers, optimise, train

DIGITS = DataInfo(shape=(1, 8, 8))


def _model(method, **overrides):
    return build_model(configure(method, "digits", overrides=overrides), DIGITS)


def _correlated_batch(cov: torch.Tensor, m: int, seed: int):
    """x ~ N(0, cov), q(z|x) = N(x, I), z ~ q(z|x): the aggregate posterior is N(0, cov + I)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, len(cov), generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    z = x + torch.randn(x.shape, generator=g, dtype=torch.float64)
    return z, x, torch.zeros_like(x)


def _gaussian_tc(cov: torch.Tensor) -> float:
    """TC of N(0, cov) = sum_l H(z_l) - H(z) = -0.5 log det(correlation matrix)."""
    sd = cov.diagonal().sqrt()
    return -0.5 * torch.logdet(cov / sd[:, None] / sd[None, :]).item()


# ---------------------------------------------------------------------------------- estimators


def test_gaussian_log_density_matches_torch():
    x, m, lv = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    expected = Normal(m, (0.5 * lv).exp()).log_prob(x)
    assert torch.allclose(dvae.gaussian_log_density(x, m, lv), expected, atol=1e-5)


def test_total_correlation_matches_a_direct_computation():
    torch.manual_seed(0)
    m, d = 5, 3
    z, mean, logvar = torch.randn(m, d), torch.randn(m, d), torch.randn(m, d) * 0.5
    # log q(z_j) and log q(z_jl), q = (1/M) sum_i q(.|x_i), one density at a time
    tc = 0.0
    for j in range(m):
        joint = (
            sum(
                math.prod(
                    math.exp(Normal(mean[i, k], math.exp(0.5 * logvar[i, k])).log_prob(z[j, k]))
                    for k in range(d)
                )
                for i in range(m)
            )
            / m
        )
        marginals = [
            sum(
                math.exp(Normal(mean[i, k], math.exp(0.5 * logvar[i, k])).log_prob(z[j, k]))
                for i in range(m)
            )
            / m
            for k in range(d)
        ]
        tc += (math.log(joint) - sum(map(math.log, marginals))) / m
    assert dvae.total_correlation(z, mean, logvar).item() == pytest.approx(tc, abs=1e-5)
    # Chen et al.'s constant log(N M) per density leaves (D - 1) log N more in the TC
    with_n = dvae.total_correlation(z, mean, logvar, dataset_size=1000).item()
    assert with_n == pytest.approx(tc + (d - 1) * math.log(1000), abs=1e-4)


def test_total_correlation_of_independent_gaussians_is_about_zero():
    z, mean, logvar = _correlated_batch(
        torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)), 2000, seed=1
    )
    assert abs(dvae.total_correlation(z, mean, logvar).item()) < 0.02


def test_total_correlation_approaches_the_gaussian_tc_for_a_large_batch():
    cov = 3.0 * torch.tensor(
        [[1.0, 0.9, 0.3], [0.9, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64
    )
    truth = _gaussian_tc(cov + torch.eye(3, dtype=torch.float64))  # TC of the aggregate q(z)
    # by hand: cov + I has variances 4 and covariances 2.7, 0.9, 1.5, so correlations
    # a, b, c = 0.675, 0.225, 0.375 and det = 1 + 2abc - a^2 - b^2 - c^2
    a, b, c = 0.675, 0.225, 0.375
    assert truth == pytest.approx(-0.5 * math.log(1 + 2 * a * b * c - a * a - b * b - c * c))
    errors = []
    for m in (50, 2000):
        z, mean, logvar = _correlated_batch(cov, m, seed=2)
        errors.append(abs(dvae.total_correlation(z, mean, logvar).item() - truth))
    assert errors[1] < 0.03
    assert errors[1] < errors[0]


def test_dip_regularizer_by_hand():
    cov = torch.tensor([[2.0, 0.5], [0.5, 0.25]])
    # off-diagonal: 3 * (0.5^2 + 0.5^2) = 1.5; diagonal: 7 * ((2-1)^2 + (0.25-1)^2) = 10.9375
    assert dvae.dip_regularizer(cov, lambda_od=3.0, lambda_d=7.0).item() == pytest.approx(12.4375)
    x = torch.randn(50, 4, dtype=torch.float64)
    expected = np.cov(x.numpy(), rowvar=False, bias=True)
    np.testing.assert_allclose(dvae.covariance(x).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_dip_vae_loss_is_the_elbo_plus_the_covariance_penalty(dip_type):
    torch.manual_seed(0)
    model = _model("dip_vae", dip_type=dip_type, lambda_od=2.0)
    x = torch.rand(16, 1, 8, 8).round()
    logs = model.loss({"x": x}, step=0)
    mean, logvar = (t.detach().double().numpy() for t in model.posterior(x))
    cov = np.cov(mean, rowvar=False, bias=True)
    lambda_d = 20.0  # disentanglement_lib: lambda_d = 10 * lambda_od for type i ...
    if dip_type == "ii":
        cov = cov + np.diag(np.exp(logvar).mean(0))
        lambda_d = 2.0  # ... and 1 * lambda_od for type ii
    off = cov - np.diag(np.diag(cov))
    penalty = 2.0 * (off**2).sum() + lambda_d * ((np.diag(cov) - 1) ** 2).sum()
    assert logs["penalty"].item() == pytest.approx(penalty, rel=1e-4)
    assert logs["loss"].item() == pytest.approx((-logs["elbo"] + penalty).item(), rel=1e-4)
    assert _model("dip_vae", dip_type=dip_type, lambda_od=2.0, lambda_d_factor=3.0).lambda_d == 6.0


def test_beta_tcvae_loss_is_the_elbo_plus_beta_minus_one_tc():
    model = _model("beta_tcvae", beta=4.0)
    x = torch.rand(12, 1, 8, 8).round()
    torch.manual_seed(1)
    logs = model.loss({"x": x}, step=0)
    torch.manual_seed(1)
    mean, logvar = model.posterior(x)
    z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    nll = -Bernoulli(logits=model.decoder(z)).log_prob(x).flatten(1).sum(1).mean()
    kl = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    tc = dvae.total_correlation(z, mean, logvar)
    assert logs["tc"].item() == pytest.approx(tc.item(), rel=1e-5)
    assert logs["loss"].item() == pytest.approx((nll + kl + 3.0 * tc).item(), rel=1e-5)


# ------------------------------------------------------------------------------------ FactorVAE


def test_permute_dims_permutes_each_latent_independently():
    b, d = 400, 4
    z = torch.arange(b * d, dtype=torch.float32).view(b, d)  # every value unique
    out = dvae.permute_dims(z, generator=torch.Generator().manual_seed(0))
    for k in range(d):  # each column keeps its own values, reordered
        assert torch.equal(out[:, k].sort().values, z[:, k])
        assert not torch.equal(out[:, k], z[:, k])
    rows = (out // d).long()  # the original row each entry came from
    assert (rows[:, :1] == rows).all(1).float().mean() < 0.02  # rows are broken up
    assert all(not torch.equal(rows[:, 0], rows[:, k]) for k in range(1, d))
    # perfectly dependent latents become uncorrelated
    same = torch.randn(2000, 1).expand(2000, 3)
    r = np.corrcoef(dvae.permute_dims(same).T.numpy())
    assert np.abs(r[np.triu_indices(3, 1)]).max() < 0.1


def test_factor_vae_losses_by_hand():
    model = _model("factor_vae", gamma=10.0, disc_hidden=16, disc_layers=2)
    x = torch.rand(8, 1, 8, 8).round()
    torch.manual_seed(3)
    logs = model.loss({"x": x}, step=0)
    torch.manual_seed(3)
    mean, logvar = model.posterior(x)
    z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    nll = -Bernoulli(logits=model.decoder(z)).log_prob(x).flatten(1).sum(1).mean()
    kl = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    z_perm = z.gather(0, torch.rand(z.shape).argsort(0))
    logits, logits_perm = model.discriminator(z), model.discriminator(z_perm)
    tc = (logits[:, 0] - logits[:, 1]).mean()
    p, p_perm = (
        logits.softmax(1).clamp(1e-6, 1 - 1e-6),
        logits_perm.softmax(1).clamp(1e-6, 1 - 1e-6),
    )
    disc = -(0.5 * p[:, 0].log().mean() + 0.5 * p_perm[:, 1].log().mean())
    assert logs["tc"].item() == pytest.approx(tc.item(), rel=1e-5)
    assert logs["loss"].item() == pytest.approx((nll + kl + 10.0 * tc).item(), rel=1e-5)
    assert logs["loss_discriminator"].item() == pytest.approx(disc.item(), rel=1e-5)


def test_factor_vae_discriminator_is_trained_on_its_own_loss_only():
    torch.manual_seed(0)
    model = _model("factor_vae", disc_hidden=32, disc_layers=2)
    groups = model.param_groups()
    main, disc = groups["main"], groups["discriminator"]
    assert {id(p) for p in main}.isdisjoint(id(p) for p in disc)
    assert len(main) + len(disc) == len(list(model.parameters()))
    assert model.group_train_overrides["discriminator"]["betas"] == [0.5, 0.9]

    logs = model.loss({"x": torch.rand(16, 1, 8, 8).round()}, step=0)
    want_disc = torch.autograd.grad(logs["loss_discriminator"], disc, retain_graph=True)
    want_main = torch.autograd.grad(logs["loss"], main, retain_graph=True)
    leak = torch.autograd.grad(logs["loss"], disc, retain_graph=True)
    assert any(g.abs().sum() > 0 for g in leak)  # the VAE loss does depend on the discriminator
    settings = TrainConfig(optimizer="sgd", lr=0.0, momentum=0.0, grad_clip=0.0)
    optimise(logs, Optimisers(groups, settings, {}))
    for p, g in zip(disc, want_disc, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-7)
    for p, g in zip(main, want_main, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-7)


# ------------------------------------------------------------------------------ training, input


@pytest.mark.parametrize(
    "method,overrides",
    [
        ("factor_vae", {"disc_hidden": 64}),
        ("beta_tcvae", {}),
        ("dip_vae", {}),
        ("dip_vae", {"dip_type": "ii"}),
    ],
)
def test_trains_a_few_steps_on_digits(tmp_path, tiny_overrides, method, overrides):
    cfg = configure(method, "digits", overrides=tiny_overrides | overrides)
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for r in records:
        assert all(math.isfinite(v) for v in r.values()), r
        assert "penalty" in r
    if method == "factor_vae":
        assert "loss_discriminator" in records[-1]
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(load(tmp_path / "run", device="cpu").encode(x), run.encode(x))


def test_factor_vae_training_updates_both_players(tmp_path, tiny_overrides):
    cfg = configure("factor_vae", "digits", overrides=tiny_overrides | {"disc_hidden": 32})
    torch.manual_seed(cfg.train.seed)
    before = build_model(cfg, DIGITS).state_dict()
    after = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False).model.state_dict()
    assert not torch.equal(
        before["discriminator.net.0.weight"], after["discriminator.net.0.weight"]
    )
    assert not torch.equal(before["to_mean.weight"], after["to_mean.weight"])


@pytest.mark.parametrize(
    "method,override,match",
    [
        ("dip_vae", {"dip_type": "iii"}, "model.dip_type"),
        ("dip_vae", {"lambda_od": -1}, "model.lambda_od"),
        ("dip_vae", {"lambda_d_factor": "big"}, "model.lambda_d_factor"),
        ("factor_vae", {"gamma": -5}, "model.gamma"),
        ("factor_vae", {"disc_layers": 0}, "model.disc_layers"),
        ("beta_tcvae", {"beta": "x"}, "model.beta"),
    ],
)
def test_bad_config_is_one_line_config_error(method, override, match):
    with pytest.raises(ConfigError, match=match) as e:
        configure(method, "digits", overrides=override)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("method", ["factor_vae", "beta_tcvae"])
def test_batch_of_one_is_refused(method):
    model = _model(method)
    with pytest.raises(ValueError, match="at least 2"):
        model.loss({"x": torch.rand(1, 1, 8, 8)}, step=0)


def test_estimators_refuse_wrong_shapes():
    with pytest.raises(ValueError, match=r"\[batch, dim\]"):
        dvae.total_correlation(torch.zeros(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[batch, dim\]"):
        dvae.permute_dims(torch.zeros(2, 3, 4))
