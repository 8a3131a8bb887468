"""Slot Attention: the attention is permutation-equivariant in its slots, the masks sum to one,
codes are functions of the image in eval mode, training resumes exactly, and the segmentation
part scores the argmax masks as a hand recomputation does."""

import numpy as np
import pytest
import torch
from PIL import Image

from replab.data import make_dataset
from replab.eval.context import sample_indices
from replab.eval.parts.segmentation import PICK_STREAM
from replab.eval.protocol import evaluate, suite_named, write_eval
from replab.eval.segmentation import adjusted_rand_index, foreground_ari
from replab.methods import configure, method_class
from replab.training.loop import train


def model(data="tetrominoes", **overrides):
    torch.manual_seed(0)
    d = make_dataset(data)
    cfg = configure("slot_attention", data, overrides=overrides).model
    return method_class("slot_attention")(cfg, d.info), d


def test_slot_attention_is_permutation_equivariant_in_its_slots():
    m, _ = model()
    attention = m.attention.eval()
    torch.manual_seed(1)
    inputs, slots = torch.randn(2, 50, 32), torch.randn(2, 4, 32)
    perm = torch.tensor([2, 0, 3, 1])
    out, attn = attention(inputs, slots)
    out_p, attn_p = attention(inputs, slots[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn_p, attn[:, :, perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn.sum(2), torch.ones(2, 50))  # a softmax over the slots


def test_the_implicit_gradient_skips_the_earlier_iterations_but_reaches_the_initial_slots():
    m, _ = model()
    torch.manual_seed(2)
    inputs = torch.randn(2, 50, 32)

    def grads(implicit):
        m.attention.cfg.implicit = implicit
        m.zero_grad()
        init = m.slot_mu + m.slot_log_sigma.exp() * torch.randn(
            2, 4, 32, generator=torch.Generator().manual_seed(0)
        )
        slots, _ = m.attention(inputs, init)
        slots.square().sum().backward()
        mu_grad = m.slot_mu.grad
        return None if mu_grad is None else mu_grad.clone(), m.attention.gru.weight_hh.grad.clone()

    mu_full, gru_full = grads(False)
    mu_implicit, gru_implicit = grads(True)
    m.attention.cfg.implicit = True
    # the same value either way, but the GRU's gradient comes from one iteration, not three
    assert not torch.allclose(gru_implicit, gru_full)
    # straight through: the initial slots' mean gets the last iteration's input gradient
    assert mu_implicit.abs().sum() > 0 and not torch.allclose(mu_implicit, mu_full)
    with torch.no_grad():
        init = m.slot_mu.expand(2, 4, 32)
        m.attention.cfg.implicit = False
        full = m.attention(inputs, init)[0]
        m.attention.cfg.implicit = True
        torch.testing.assert_close(m.attention(inputs, init)[0], full)
    # without the straight-through term the initial slots get nothing, and are not trained
    m.attention.cfg.straight_through = False
    mu_cut, _ = grads(True)
    assert mu_cut is None
    fixed, _ = model(straight_through=False)
    assert not fixed.slot_mu.requires_grad and fixed.attention.gru.weight_hh.requires_grad


def test_masks_sum_to_one_and_eval_codes_are_functions_of_the_image():
    m, d = model()
    x = d.get_batch(np.arange(6))["x"]
    m.eval()
    masks = m.masks(x)
    assert masks.shape == (6, 4, 35, 35)
    torch.testing.assert_close(masks.sum(1), torch.ones(6, 35, 35))
    codes = m.encode(x)
    torch.testing.assert_close(m.encode(x[3:4]), codes[3:4], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.encode(x), codes)


def test_training_resumes_bit_for_bit(resume_is_exact):
    few = {"train.steps": 4, "train.batch_size": 8, "train.checkpoint_every": 2}
    resume_is_exact(configure("slot_attention", "tetrominoes", overrides=few), stop=2)


def test_the_segmentation_part_scores_the_argmax_masks_beside_its_baselines(tmp_path):
    data = make_dataset("tetrominoes")
    few = {"train.steps": 2, "train.batch_size": 8}
    run = train(configure("slot_attention", "tetrominoes", overrides=few), data, tmp_path / "r",
                progress=False)  # fmt: skip
    suite = suite_named("quick").only(("segmentation",)).with_options(segmentation_images=40)
    evaluation = evaluate(run, data, suite, seed=3, log=lambda *a, **k: None)
    result = evaluation.parts["segmentation"]
    # no labels: the code's width from one input, no probe sample encoded for nothing
    assert evaluation.representation_dim == 64 and "features" not in evaluation.seconds
    assert result.images == 40
    # by hand: the same test images, each pixel to its largest mask
    test = data.split("test")
    picked = test.indices[sample_indices(len(test), 40, np.random.default_rng([3, PICK_STREAM]))]
    with torch.no_grad():
        pred = run.model.eval().masks(data.get_batch(picked)["x"]).argmax(1).flatten(1).numpy()
    true = data.segments(picked)
    assert result.scores["model"]["ari"] == float(adjusted_rand_index(true, pred).mean())
    assert result.scores["model"]["fg_ari"] == float(foreground_ari(true, pred).mean())
    assert abs(result.scores["random_masks"]["ari"]) < 0.05
    assert result.scores["colour_kmeans"]["ari"] > 0.9  # flat colours on black
    # the figure: six images, each a row of input, reconstruction, segments and 4 slots
    write_eval(tmp_path / "r", evaluation)
    figure = Image.open(tmp_path / "r" / result.to_json()["figure"])
    assert figure.size == (2 + 7 * 37, 2 + 6 * 37)


def test_the_segmentation_part_needs_a_segmenter_and_object_scenes(tmp_path):
    from replab.eval.parts.segmentation import Segmentation

    m, d = model()
    part = Segmentation()
    assert part.applies(m, d)
    assert not part.applies(m, make_dataset("sprites"))  # no masks to score against
    vae = method_class("vae")(configure("vae", "tetrominoes").model, d.info)
    assert not part.applies(vae, d)  # no masks to score


def test_object_probes_read_the_count_and_the_mean_factors_as_a_hand_recomputation(tmp_path):
    from replab.eval import probes
    from replab.eval.parts.object_probes import PICK_STREAM, scene_targets

    data = make_dataset("multi_sprites")
    idx = np.array([4, 9])
    targets, names = scene_targets(data, idx)
    assert names == ["objects", "mean scale", "mean orientation", "mean pos_x", "mean pos_y",
                     "mean red", "mean green", "mean blue"]  # fmt: skip
    factors = data.object_factors(idx)
    for row, scene in zip(targets, factors, strict=True):
        present = scene[scene[:, 0] >= 0]
        assert row[0] == len(present)
        np.testing.assert_allclose(row[1:], present[:, [1, 2, 3, 4, 5, 6, 7]].mean(0))

    few = {"train.steps": 1, "train.batch_size": 4}
    run = train(configure("slot_attention", "multi_sprites", overrides=few), data,
                tmp_path / "r", progress=False)  # fmt: skip
    suite = suite_named("quick").only(("object_probes",)).with_options(object_probe_points=120)
    result = evaluate(run, data, suite, seed=5, log=lambda *a, **k: None).parts["object_probes"]
    assert set(result.scores) == {"representation", "pixels", "random_encoder"}
    # by hand for the model's codes: the same images, the same probes
    train_split, test_split = data.split("train"), data.split("test")
    rng = np.random.default_rng([5, PICK_STREAM])
    i_train = train_split.indices[sample_indices(len(train_split), 120, rng)]
    i_test = test_split.indices[sample_indices(len(test_split), 60, rng)]
    with torch.no_grad():
        model = run.model.eval()
        c_train = model.encode(data.get_batch(i_train)["x"]).double().numpy()
        c_test = model.encode(data.get_batch(i_test)["x"]).double().numpy()
    want = probes.factor_probes(c_train, scene_targets(data, i_train)[0], c_test,
                                scene_targets(data, i_test)[0], names, categorical={"objects"},
                                seed=5)  # fmt: skip
    for name in names:
        assert result.scores["representation"][name][1] == pytest.approx(want[name]["score"],
                                                                         abs=1e-6)  # fmt: skip
    assert result.scores["representation"]["objects"][0] == "accuracy"
