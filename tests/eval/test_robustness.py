"""The attacks against known answers: FGSM on a linear classifier is its closed form, an
epsilon of 0 changes nothing, PGD is at least as strong as FGSM, accuracy does not rise with
epsilon, the random-sign check finds exactly the images whose ball crosses the boundary; the
part end to end on digits, and bad epsilon lists refused."""

import dataclasses

import numpy as np
import pytest
import torch

from replab.data import make_dataset
from replab.eval import robustness as attacks
from replab.eval.protocol import SUITES, evaluate
from replab.methods import configure
from replab.training.loop import train


def linear(W, b):
    return lambda x: x.flatten(1) @ W + b


def test_fgsm_on_a_linear_two_class_probe_is_its_closed_form():
    g = torch.Generator().manual_seed(0)
    d = 12
    W, b = torch.randn(d, 2, generator=g, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    x = 0.2 + 0.6 * torch.rand(16, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=g)
    eps = 0.05
    # d CE / dx = p_other (w_other - w_y): its sign is that of the weight rows' difference
    other = W[:, 1 - y].T  # [16, d]
    mine = W[:, y].T
    expected = (x + eps * torch.sign(other - mine)).clamp(0, 1)
    torch.testing.assert_close(attacks.fgsm(linear(W, b), x, y, eps), expected, rtol=0, atol=0)
    # a large step clips to the image range
    big = attacks.fgsm(linear(W, b), x, y, 0.5)
    assert big.min() >= 0 and big.max() <= 1
    torch.testing.assert_close(big, (x + 0.5 * torch.sign(other - mine)).clamp(0, 1))


def _blobs_classifier():
    """A small MLP fitted on two Gaussian blobs in [0, 1]^20."""
    g = torch.Generator().manual_seed(1)
    n, d = 400, 20
    y = torch.randint(0, 2, (n,), generator=g)
    x = (0.5 + 0.12 * (2 * y[:, None].float() - 1) + 0.1 * torch.randn(n, d, generator=g)).clamp(
        0, 1
    )
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net, x, y


def test_pgd_is_never_weaker_than_fgsm_and_accuracy_does_not_rise_with_epsilon():
    net, x, y = _blobs_classifier()
    n = len(y)
    clean = attacks.accuracy(net, x, y)
    assert clean > 0.9
    fgsm, pgd = [], []
    for eps in (0, 1, 2, 4, 8, 16, 32):
        e = eps / 255
        fgsm.append(attacks.accuracy(net, attacks.fgsm(net, x, y, e), y))
        gen = torch.Generator().manual_seed(eps)
        pgd.append(attacks.accuracy(net, attacks.pgd(net, x, y, e, steps=10, generator=gen), y))
    assert fgsm[0] == pgd[0] == clean  # epsilon 0: the clean images
    noise = 2 / n  # a couple of images either way
    assert all(p <= f + noise for p, f in zip(pgd, fgsm, strict=True))
    for curve in (fgsm, pgd):
        assert all(b <= a + noise for a, b in zip(curve, curve[1:], strict=False))
    assert pgd[-1] < clean - 0.3  # and the attack does bite


def test_pgd_stays_in_the_ball_and_the_image_range():
    net, x, y = _blobs_classifier()
    adv = attacks.pgd(net, x, y, 0.1, steps=5, generator=torch.Generator().manual_seed(0))
    assert (adv - x).abs().max() <= 0.1 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1


def test_random_signs_break_exactly_the_images_whose_ball_crosses_the_boundary():
    # one pixel; class 1 iff x > 0.5; images at 0.3 (ball of 0.1 does not reach) and 0.45 (does)
    W = torch.tensor([[0.0, 1.0]])
    b = torch.tensor([0.0, -0.5])
    x = torch.tensor([[0.3], [0.45], [0.7]])
    y = torch.tensor([0, 0, 1])
    broken = attacks.random_sign_attack(
        linear(W, b), x, y, 0.1, queries=64, generator=torch.Generator().manual_seed(0)
    )
    assert broken.tolist() == [False, True, False]


def test_an_encoder_that_cuts_the_graph_leaves_white_box_attacks_blind_and_random_signs_not():
    W = torch.tensor([[0.0, 1.0]])
    b = torch.tensor([0.0, -0.5])

    def detached(x):
        return linear(W, b)(x).detach()  # e.g. an encoder under no_grad, or a quantiser

    x, y = torch.tensor([[0.45]]), torch.tensor([0])
    assert torch.equal(attacks.fgsm(detached, x, y, 0.1), x)  # no gradient: no step
    broken = attacks.random_sign_attack(detached, x, y, 0.1, queries=64,
                                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert broken.tolist() == [True]  # the check the part compares against PGD


def test_curve_area_is_the_mean_accuracy_over_the_epsilon_range():
    assert attacks.curve_area([0, 1, 2], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert attacks.curve_area([0, 2, 4, 8], [1, 1, 1, 1]) == pytest.approx(1.0)
    assert attacks.curve_area([4], [0.3]) == pytest.approx(0.3)


@pytest.mark.parametrize("text", ["a,b", "1,,2", "1;2", "-1", "300", "nan", ""])
def test_bad_epsilon_lists_are_refused_in_one_line(text):
    with pytest.raises(ValueError) as e:
        attacks.parse_epsilons(text)
    assert "\n" not in str(e.value)


def test_epsilons_are_sorted_and_deduplicated():
    assert attacks.parse_epsilons("8, 0,2,2") == (0.0, 2.0, 8.0)


SMALL = dataclasses.replace(
    SUITES["quick"], n_train=300, n_test=150, attack_examples=40, attack_steps=4,
    blackbox_examples=10, blackbox_queries=20, epsilons=(0.0, 8.0, 64.0),
    parts=("robustness",),
)  # fmt: skip


def test_the_part_attacks_each_classifier_from_its_clean_accuracy_down(tmp_path):
    data = make_dataset("digits")
    cfg = configure("simclr", "digits", overrides={"train.steps": 3, "train.batch_size": 16})
    run = train(cfg, data, tmp_path / "run", progress=False)
    result = evaluate(run, data, SMALL, seed=0, log=lambda m: None)
    rob = result.parts["robustness"]
    assert list(rob.accuracy) == ["representation", "pixels", "random_encoder"]
    assert rob.epsilons == [0.0, 8.0, 64.0] and rob.examples == 40
    for curves in rob.accuracy.values():
        assert curves["fgsm"][0] == curves["pgd"][0] > 0.3  # eps 0: clean, above chance (0.1)
        assert curves["pgd"][-1] <= curves["pgd"][0]
    assert set(rob.blackbox) == set(rob.accuracy)
    assert all(d["eps"] == 8.0 for d in rob.blackbox.values())
    back = type(rob).from_json(rob.to_json())
    assert back.accuracy == rob.accuracy and back.area("pixels") == rob.area("pixels")
    assert np.isfinite(rob.area("representation"))
