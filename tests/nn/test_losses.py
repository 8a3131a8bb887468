"""InfoNCE against a direct computation, its minimum, and negatives that never hit the positive."""

import math

import numpy as np
import pytest
import torch

from replab.nn.losses import InfoNCELoss, draw_negatives


def test_loss_equals_the_formula_computed_by_hand():
    pred = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])
    keys = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 0.0, -1.0], [0.0, 1.0, 1.0]])
    positive = torch.tensor([1, 3])
    negatives = torch.tensor([[0, 2], [2, 0]])

    def dot(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    p, k = pred.tolist(), keys.tolist()
    want = 0.0
    for i in range(2):
        s_pos = dot(p[i], k[positive[i]])
        s_neg = [dot(p[i], k[j]) for j in negatives[i].tolist()]
        want += -math.log(math.exp(s_pos) / (math.exp(s_pos) + sum(math.exp(s) for s in s_neg)))
    want /= 2
    got = InfoNCELoss()(pred, keys, positive, negatives)
    assert got.item() == pytest.approx(want, rel=1e-6)

    # without drawn negatives every other key is one: a softmax over the whole pool
    full = 0.0
    for i in range(2):
        s = [dot(p[i], kj) for kj in k]
        full += -math.log(math.exp(s[positive[i]]) / sum(math.exp(v) for v in s))
    assert InfoNCELoss()(pred, keys, positive).item() == pytest.approx(full / 2, rel=1e-6)

    # cosine similarity over a temperature
    t = 0.3
    cos = [[dot(a, b) / math.sqrt(dot(a, a) * dot(b, b)) / t for b in k] for a in p]
    want_cos = sum(
        -math.log(
            math.exp(cos[i][positive[i]])
            / (math.exp(cos[i][positive[i]]) + sum(math.exp(cos[i][j]) for j in negatives[i]))
        )
        for i in range(2)
    )
    got_cos = InfoNCELoss(temperature=t, normalize=True)(pred, keys, positive, negatives)
    assert got_cos.item() == pytest.approx(want_cos / 2, rel=1e-6)


def test_the_minimum_is_reached_when_the_prediction_matches_the_positive():
    # unit keys: the positive e1 and negatives placed symmetrically around it
    keys = torch.tensor(
        [[1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 1.0], [0, 0, -1.0]], dtype=torch.float64
    )
    positive = torch.tensor([0])
    negatives = torch.tensor([[1, 2, 3, 4]])
    loss = InfoNCELoss(temperature=0.5, normalize=True)

    def at(p):
        return loss(p[None], keys, positive, negatives).item()

    best = at(keys[0])
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        p = torch.randn(3, generator=g, dtype=torch.float64)
        assert at(p) >= best - 1e-12
    # gradient descent from a random start goes to the positive
    p = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_()
    opt = torch.optim.SGD([p], lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        loss(p[None], keys, positive, negatives).backward()
        opt.step()
    assert torch.nn.functional.cosine_similarity(p.detach(), keys[0], dim=0) > 0.999

    # of predictions equal to each unit key, the one equal to the positive scores lowest
    values = [InfoNCELoss()(keys[j][None], keys, positive, negatives).item() for j in range(5)]
    assert int(np.argmin(values)) == 0


@pytest.mark.parametrize("mode", ["any", "same_group", "other_groups"])
def test_negatives_never_include_the_positive_and_cover_what_the_mode_allows(mode):
    groups, size = 4, 5
    positive = torch.arange(groups * size).repeat(20)  # every key, many times
    neg = draw_negatives(positive, groups * size, size, 50, mode, torch.Generator().manual_seed(1))
    assert neg.shape == (len(positive), 50)
    assert not (neg == positive[:, None]).any()
    assert neg.min() >= 0 and neg.max() < groups * size
    same = (neg // size) == (positive[:, None] // size)
    if mode == "same_group":
        assert same.all()
    if mode == "other_groups":
        assert not same.any()
    # every allowed key is drawn for key 7 (group 1): the sampling reaches the whole set
    drawn = set(neg[positive == 7].flatten().tolist())
    allowed = {
        "any": set(range(20)) - {7},
        "same_group": {5, 6, 8, 9},
        "other_groups": set(range(20)) - {5, 6, 7, 8, 9},
    }[mode]
    assert drawn == allowed


def test_negatives_refuse_impossible_pools():
    pos = torch.tensor([0])
    with pytest.raises(ValueError, match="groups of at least 2"):
        draw_negatives(pos, 3, 1, 4, "same_group")
    with pytest.raises(ValueError, match="at least 2 groups"):
        draw_negatives(pos, 3, 3, 4, "other_groups")
    with pytest.raises(ValueError, match="choose from"):
        draw_negatives(pos, 3, 3, 4, "nearby")
    with pytest.raises(ValueError, match="whole groups"):
        draw_negatives(pos, 7, 3, 4, "any")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        draw_negatives(torch.tensor([3]), 3, 3, 4, "any")
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=0)
