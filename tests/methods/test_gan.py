"""BiGAN and GAN: the joint discriminator's pairs, the losses, the players, collapse, the CLI."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError, TrainConfig
from replab.data import make_dataset
from replab.data.base import ArrayDataset, DataInfo
from replab.eval.analysis import save_model_figures
from replab.methods import configure
from replab.methods.gan import adversarial_losses, diversity, is_collapsed, mean_pairwise_distance
from replab.run import build_model, load
from replab.training.loop import Optimisers, optimise, train

SMALL = {"hidden": 32, "latent_dim": 6}


def tiny(method="bigan", shape=(1, 8, 8), **overrides):
    torch.manual_seed(0)
    cfg = configure(method, "digits", overrides=SMALL | overrides)
    return build_model(cfg, DataInfo(shape=shape))


def test_losses_match_their_formulas_on_hand_made_scores():
    real, fake = [torch.tensor([2.0, 0.5])], [torch.tensor([-0.5, 1.0])]
    g, d = adversarial_losses(real, fake, "hinge")
    # L_D = mean(relu(1 - [2, .5])) + mean(relu(1 + [-.5, 1])) = .25 + 1.25
    assert d.item() == pytest.approx(1.5)
    assert g.item() == pytest.approx(1.25 - 0.25)  # mean(real) - mean(fake)
    g, _ = adversarial_losses(real, fake, "hinge", real_side=False)
    assert g.item() == pytest.approx(-0.25)  # -mean(fake)

    def sp(v):
        return math.log1p(math.exp(v))

    g, d = adversarial_losses(real, fake, "non_saturating")
    assert d.item() == pytest.approx((sp(-2) + sp(-0.5)) / 2 + (sp(-0.5) + sp(1)) / 2)
    assert g.item() == pytest.approx((sp(2) + sp(0.5)) / 2 + (sp(0.5) + sp(-1)) / 2)
    g, _ = adversarial_losses(real, fake, "non_saturating", real_side=False)
    assert g.item() == pytest.approx((sp(0.5) + sp(-1)) / 2)
    # several heads (BigBiGAN's s_xz, s_x, s_z): the per-head losses add up
    heads_r = [torch.tensor([0.3]), torch.tensor([-2.0]), torch.tensor([1.5])]
    heads_f = [torch.tensor([0.1]), torch.tensor([-3.0]), torch.tensor([0.0])]
    g, d = adversarial_losses(heads_r, heads_f, "hinge")
    assert d.item() == pytest.approx((0.7 + 1.1) + (3.0 + 0.0) + (0.0 + 1.0))
    assert g.item() == pytest.approx((0.3 - 0.1) + (-2.0 + 3.0) + (1.5 - 0.0))
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        adversarial_losses(real, fake, "wasserstein")


def test_joint_discriminator_sees_encoder_pairs_and_generator_pairs():
    model = tiny().train()
    x = torch.rand(5, 1, 8, 8)
    seen = {}
    original = model.discriminate

    def spy(xs, zs):
        seen["x"], seen["z"] = xs.detach().clone(), zs.detach().clone()
        return original(xs, zs)

    model.discriminate = spy
    torch.manual_seed(3)
    logs = model.loss({"x": x}, 0)
    torch.manual_seed(3)
    z = torch.randn(5, 6)  # the prior draw the loss made
    with torch.no_grad():  # training mode, as in the loss: batch norm over the batch
        e_x, g_z = model.encoder(x), torch.sigmoid(model.generator(z))
        h = model.encoder[:-1](x)  # before E's output batch norm: (h - mean) / sqrt(var + 1e-5)
    by_hand = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
    assert torch.allclose(e_x, by_hand, atol=1e-4)
    model.eval()  # spectral norm: reuse the power iteration's vectors of that forward pass
    with torch.no_grad():
        assert torch.equal(seen["x"][:5], x)  # real pairs: (x, E(x))
        assert torch.allclose(seen["z"][:5], e_x)
        assert torch.equal(seen["z"][5:], z)  # fake pairs: (G(z), z)
        assert torch.allclose(seen["x"][5:], g_z)
        # and the losses are adversarial_losses of those scores, by hand
        scores = original(seen["x"], seen["z"])
    assert len(scores) == 3  # s_xz, s_x, s_z
    g, d = adversarial_losses([s[:5] for s in scores], [s[5:] for s in scores], "hinge")
    assert logs["loss"].item() == pytest.approx(g.item(), rel=1e-5)
    assert logs["loss_discriminator"].item() == pytest.approx(d.item(), rel=1e-5)
    joint_only = tiny(unary_scores=False)
    assert len(joint_only.discriminate(x, torch.randn(5, 6))) == 1


def test_plain_gan_discriminates_images_only_and_has_no_encoder():
    model = tiny("gan").train()
    assert not hasattr(model, "encode") and not hasattr(model, "encoder")
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    logs = model.loss({"x": x}, 0)
    torch.manual_seed(1)
    fake = model.sample(4)
    model.eval()  # spectral norm: reuse the power iteration's vectors of that forward pass
    with torch.no_grad():
        real_s, fake_s = model.discriminate(x)[0], model.discriminate(fake)[0]
    g, d = adversarial_losses([real_s], [fake_s], "hinge", real_side=False)
    assert logs["loss"].item() == pytest.approx(g.item(), rel=1e-4, abs=1e-6)
    assert logs["loss_discriminator"].item() == pytest.approx(d.item(), rel=1e-4)
    assert model.sample(3).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("method", ["bigan", "gan"])
def test_each_player_is_updated_by_its_own_loss_only(method):
    model = tiny(method).train()
    groups = model.param_groups()
    main, disc = groups["main"], groups["discriminator"]
    assert {id(p) for p in main}.isdisjoint(id(p) for p in disc)
    assert len(main) + len(disc) == len(list(model.parameters()))
    owners = {id(p): n.split(".")[0] for n, p in model.named_parameters()}
    expected_main = {"encoder", "generator"} if method == "bigan" else {"generator"}
    assert {owners[id(p)] for p in main} == expected_main
    # the loop's update: each group's gradient is that of its own loss (by autograd.grad)
    logs = model.loss({"x": torch.rand(6, 1, 8, 8)}, 0)
    want_main = torch.autograd.grad(logs["loss"], main, retain_graph=True)
    want_disc = torch.autograd.grad(logs["loss_discriminator"], disc, retain_graph=True)
    settings = TrainConfig(optimizer="sgd", lr=0.0, momentum=0.0, grad_clip=0.0)
    optimise(logs, Optimisers(groups, settings, {}))
    for p, w in zip(main + disc, want_main + want_disc, strict=True):
        assert torch.allclose(p.grad, w, atol=1e-7)


def test_spectral_norm_bounds_discriminator_layers():
    model = tiny().train()
    for _ in range(30):  # power iterations run on each training forward
        model.discriminate(torch.rand(4, 1, 8, 8), torch.randn(4, 6))
    layer = model.x_features.net[1]
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)
    plain = tiny(spectral_norm=False)
    assert not hasattr(plain.x_features.net[1], "parametrizations")


def test_collapse_detector():
    x = torch.rand(50, 1, 8, 8)
    assert mean_pairwise_distance(torch.ones(4, 3)).item() == 0.0
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])  # distances 5, 8, 5
    assert mean_pairwise_distance(pts).item() == pytest.approx(6.0)
    assert diversity(pts, 2 * pts).item() == pytest.approx(0.5)
    assert not is_collapsed(x[:25], x[25:])
    one = x[:1].expand(25, -1, -1, -1)
    assert is_collapsed(one, x) and is_collapsed(one + 1e-3 * torch.rand_like(one), x)


def test_collapse_detector_catches_a_deliberately_broken_configuration():
    """Broken on purpose: the discriminator is frozen at its initialisation and G takes large
    steps, so G chases the one image that D scores highest and every z maps there."""
    data = make_dataset("digits")
    real = data.get_batch(np.arange(512))["x"]
    torch.manual_seed(0)
    model = build_model(configure("gan", "digits", overrides={"hidden": 64}), data.info).train()
    opt = torch.optim.Adam(model.generator.parameters(), 1e-2, betas=(0.5, 0.999))
    for step in range(60):
        logs = model.loss({"x": real[32 * (step % 16) : 32 * (step % 16) + 32]}, step)
        opt.zero_grad()
        logs["loss"].backward(inputs=list(model.generator.parameters()))
        opt.step()
    with torch.no_grad():
        samples = model.sample(256)
    assert is_collapsed(samples, real)
    assert logs["diversity"].item() < 0.1  # the logged value says so too
    assert not is_collapsed(real[:256], real[256:])


def test_bad_input_one_line_errors():
    for method in ("bigan", "gan"):
        with pytest.raises(ConfigError, match=f"{method} needs images"):
            build_model(configure(method, "digits"), DataInfo(shape=(16,), kind="tokens"))
    with pytest.raises(ConfigError, match="model.loss: 'wgan' is not valid"):
        configure("bigan", "digits", overrides={"loss": "wgan"})
    with pytest.raises(ConfigError, match="unknown key unary_scores"):
        configure("gan", "digits", overrides={"unary_scores": False})
    for method in ("bigan", "gan"):
        with pytest.raises(ConfigError, match="train.batch_size: batch norm in E or G"):
            tiny(method).train().loss({"x": torch.rand(1, 1, 8, 8)}, 0)
    plain = tiny(latent_norm=False, batch_norm=False).train()
    assert plain.loss({"x": torch.rand(1, 1, 8, 8)}, 0)["loss"].isfinite()


@pytest.mark.parametrize("method", ["bigan", "gan"])
@pytest.mark.parametrize("loss", ["hinge", "non_saturating"])
def test_a_few_training_steps_on_digits(tmp_path, tiny_overrides, method, loss):
    cfg = configure(
        "bigan" if method == "bigan" else "gan",
        "digits",
        overrides=SMALL | tiny_overrides | {"loss": loss, "train.batch_size": 16},
    )
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    for r in logs:
        for key in ("loss", "loss_discriminator", "diversity"):
            assert math.isfinite(r[key]), key
    loaded = load(tmp_path / "run", device="cpu")
    z = torch.randn(3, 6)
    assert torch.equal(loaded.model.decode(z), run.model.decode(z))
    if method == "bigan":
        x = torch.rand(3, 1, 8, 8)
        assert loaded.encode(x).shape == (3, 6)
        assert torch.allclose(run.model.reconstruct(x), run.model.decode(run.model.encode(x)))


def test_bigan_figures_show_reconstructions_and_samples(tmp_path):
    data = ArrayDataset(np.random.default_rng(0).uniform(size=(20, 1, 8, 8)).astype(np.float32))
    written = save_model_figures(tiny(), data, tmp_path / "figures")
    assert set(written) == {"traversals", "reconstructions", "samples"}


def test_eval_refuses_a_gan_through_the_cli(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "gan"
    args = ["train", "gan", "--data", "digits", "--steps", "2", "--out", str(run_dir), "-q"]
    result = runner.invoke(app, args + ["hidden=16", "train.batch_size=8"])
    assert result.exit_code == 0, result.stderr
    for command in (
        ["eval", str(run_dir), "--suite", "quick"],
        ["embed", str(run_dir), "--data", "digits", "--out", str(tmp_path / "z.npy")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.stderr)
        assert "method gan has no encoder" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (run_dir / "eval.json").exists() and not (tmp_path / "z.npy").exists()
