"""GQN: the scene representation does not depend on the order of the context views, zero views
give the empty representation, the KL and the pixel sigma follow their formulas, the paper's
sizes are a preset, and training resumes bit for bit."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.distributions import Normal, kl_divergence

from replab.config import ConfigError
from replab.data import make_dataset
from replab.methods import configure, method_class
from replab.methods.gqn import gaussian_kl


@pytest.fixture(scope="module")
def rooms():
    return make_dataset("rooms")


def model(rooms, **overrides):
    torch.manual_seed(0)
    cfg = configure("gqn", "rooms", overrides=overrides).model
    return method_class("gqn")(cfg, rooms.info).eval()


def test_the_representation_does_not_depend_on_the_order_of_the_views(rooms):
    m = model(rooms)
    batch = rooms.get_batch(np.array([3, 4]))
    views, poses = batch["x"][:, :4], batch["pose"][:, :4]
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        r = m.represent(views, poses)
        torch.testing.assert_close(m.represent(views[:, order], poses[:, order]), r)
        assert r.shape == (2, 64 * 8 * 8)
        # zero views: the empty representation
        assert not m.represent(views[:, :0], poses[:, :0]).any()
        predicted = m.predict_views(views, poses, batch["pose"][:, 4:7])
    assert predicted.shape == (2, 3, 3, 64, 64)
    assert 0 <= predicted.min() and predicted.max() <= 1


def test_the_kl_of_two_diagonal_gaussians_is_torchs():
    torch.manual_seed(1)
    mu_q, mu_p, lv_q, lv_p = (torch.randn(3, 2, 4, 4) for _ in range(4))
    want = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp()))
    torch.testing.assert_close(gaussian_kl(mu_q, lv_q, mu_p, lv_p), want.flatten(1).sum(1))


def test_the_pixel_sigma_is_annealed_over_the_run(rooms):
    m = model(rooms)
    m.total_steps = 11
    assert [m.pixel_sigma(s) for s in (0, 5, 10, 20)] == pytest.approx([2.0, 1.35, 0.7, 0.7])


def test_the_loss_is_the_negative_elbo_per_pixel_value(rooms):
    m = model(rooms).train()
    m.total_steps = 1
    batch = rooms.get_batch(np.array([0, 1]))
    out = m.loss(batch, 0)
    # at sigma 2 the Gaussian's constant is log(2) + log(2 pi) / 2 nats per value, and the
    # squared error adds mse / (2 sigma^2); the KL is logged on its own
    constant = math.log(2.0) + 0.5 * math.log(2 * math.pi)
    want = constant + out["mse"] / 8 + out["kl"]
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out["kl"] > 0 and 1 <= out["context"] <= 5


def test_the_papers_sizes_are_a_preset_that_settings_still_override():
    paper = configure("gqn", "rooms", overrides={"preset": "paper"}).model
    assert (paper.stride, paper.steps, paper.kernel, paper.representation) == (4, 12, 5, 256)
    mixed = configure("gqn", "rooms", overrides={"model.preset": "paper", "steps": 6}).model
    assert (mixed.stride, mixed.steps) == (4, 6)
    from_file = configure("gqn", "rooms", file_values={"model": {"preset": "paper"}}).model
    assert from_file.hidden == 128
    assert configure("gqn", "rooms").model.stride == 8
    with pytest.raises(ConfigError, match="unknown preset 'huge'; choose from cpu, paper"):
        configure("gqn", "rooms", overrides={"preset": "huge"})


def test_training_resumes_bit_for_bit(resume_is_exact):
    few = {"train.steps": 4, "train.batch_size": 4, "train.checkpoint_every": 2, "steps": 2}
    resume_is_exact(configure("gqn", "rooms", overrides=few), stop=2)


def test_the_view_prediction_part_scores_views_as_a_hand_recomputation(tmp_path, rooms):
    from replab.eval.context import sample_indices
    from replab.eval.parts.view_prediction import PICK_STREAM, nearest_yaw_views
    from replab.eval.protocol import evaluate, suite_named, write_eval
    from replab.training.loop import train

    # a narrow representation keeps the scene probes' logistic fits fast
    few = {"train.steps": 2, "train.batch_size": 4, "steps": 2, "representation": 4}
    run = train(configure("gqn", "rooms", overrides=few), rooms, tmp_path / "r", progress=False)
    suite = suite_named("quick").with_options(view_scenes=6, object_probe_points=20)
    result = evaluate(run, rooms, suite, seed=2, log=lambda *a, **k: None)
    # the parts that read a scene model, and none that needs an encoder
    assert set(result.parts) == {"view_prediction", "scene_probes"}
    assert result.representation_dim is None
    part = result.parts["view_prediction"]
    # by hand: the same scenes, five views as context, the other five queried
    test = rooms.split("test")
    picked = test.indices[sample_indices(len(test), 6, np.random.default_rng([2, PICK_STREAM]))]
    batch = rooms.get_batch(picked)
    x, pose = batch["x"].double(), batch["pose"]
    true = x[:, 5:]
    with torch.no_grad():
        predicted = run.model.eval().predict_views(batch["x"][:, :5], pose[:, :5], pose[:, 5:])

    def mse(p):
        return ((p.double() - true) ** 2).mean((2, 3, 4))

    errors = mse(predicted)
    assert part.scores["model"]["mse"] == pytest.approx(errors.mean().item(), rel=1e-9)
    psnr = (10 * torch.log10(1 / errors)).mean().item()
    assert part.scores["model"]["psnr"] == pytest.approx(psnr, rel=1e-9)
    mean_view = x[:, :5].mean(1, keepdim=True)
    assert part.scores["mean_context_view"]["mse"] == pytest.approx(mse(mean_view).mean().item())
    # the nearest-yaw view, found by hand for one query
    yaw = torch.atan2(pose[0, :, 4], pose[0, :, 3])
    gaps = [abs(math.remainder(float(yaw[7] - yaw[k]), 2 * math.pi)) for k in range(5)]
    nearest = nearest_yaw_views(x[:, :5], pose[:, :5], pose[:, 5:])
    torch.testing.assert_close(nearest[0, 2], x[0, int(np.argmin(gaps))])
    assert part.scores["nearest_yaw_view"]["mse"] == pytest.approx(mse(nearest).mean().item())
    assert part.scores["empty_representation"]["mse"] > 0
    # the figure: three scenes, each three rows (context, true queries, predicted) of 5 views
    write_eval(tmp_path / "r", result)
    figure = Image.open(tmp_path / "r" / part.to_json()["figure"])
    assert figure.size == (2 + 5 * 66, 2 + 9 * 66)


def test_a_scene_model_is_refused_where_no_part_reads_it(tmp_path, rooms):
    from replab.eval.context import EvaluationError
    from replab.eval.protocol import check_evaluable
    from replab.training.loop import train

    few = {"train.steps": 1, "train.batch_size": 2, "steps": 1}
    run = train(configure("gqn", "rooms", overrides=few), rooms, tmp_path / "r", progress=False)
    check_evaluable(run, rooms)
    with pytest.raises(EvaluationError, match="^method gqn has no encoder"):
        check_evaluable(run, make_dataset("tetrominoes"))


def test_scene_probes_read_the_scene_factors_as_a_hand_recomputation(tmp_path, rooms):
    from replab.data.rooms import scene_of
    from replab.eval import probes
    from replab.eval.context import sample_indices
    from replab.eval.parts.scene_probes import PICK_STREAM
    from replab.eval.protocol import evaluate, suite_named
    from replab.training.loop import train

    # the factors by hand: count, floor colour, the objects' mean (x, z)
    scene, _ = scene_of(11)
    present = scene.kind[0] >= 0
    want = [present.sum(), *scene.floor[0], *scene.position[0][present].mean(0)]
    np.testing.assert_allclose(rooms.scene_factors(np.array([11]))[0], want)

    few = {"train.steps": 1, "train.batch_size": 2, "steps": 1, "representation": 4}
    run = train(configure("gqn", "rooms", overrides=few), rooms, tmp_path / "r", progress=False)
    suite = suite_named("quick").only(("scene_probes",)).with_options(object_probe_points=40)
    result = evaluate(run, rooms, suite, seed=4, log=lambda *a, **k: None).parts["scene_probes"]
    assert set(result.scores) == {"representation", "mean_context_view", "random_encoder"}
    train_split, test_split = rooms.split("train"), rooms.split("test")
    rng = np.random.default_rng([4, PICK_STREAM])
    i_train = train_split.indices[sample_indices(len(train_split), 40, rng)]
    i_test = test_split.indices[sample_indices(len(test_split), 20, rng)]

    def codes(indices):
        batch = rooms.get_batch(indices)
        with torch.no_grad():
            return run.model.eval().represent(batch["x"][:, :5], batch["pose"][:, :5]).double()

    names = rooms.scene_factor_names
    want = probes.factor_probes(codes(i_train).numpy(), rooms.scene_factors(i_train),
                                codes(i_test).numpy(), rooms.scene_factors(i_test), names,
                                categorical={"objects"}, seed=4)  # fmt: skip
    for name in rooms.scene_factor_names:
        assert result.scores["representation"][name][1] == pytest.approx(want[name]["score"],
                                                                         abs=1e-6)  # fmt: skip
    assert result.scores["representation"]["objects"][0] == "accuracy"
