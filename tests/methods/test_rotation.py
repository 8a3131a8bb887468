"""rotation: the labels of the four turns, and the crops and flips before turning."""

import torch

from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.rotation import rotate90, rotation_batch
from replab.run import build_model


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_rotation_labels_match_torch_rot90_on_an_asymmetric_image():
    x = torch.arange(9.0).view(1, 1, 3, 3)  # 0 1 2 / 3 4 5 / 6 7 8: no symmetry at all
    x = torch.cat([x, x.flip(-1) + 10])  # a second, different image
    turned, labels = rotation_batch(x)
    assert turned.shape == (8, 1, 3, 3)
    for k in range(4):
        for i in range(2):
            j = k * 2 + i
            assert labels[j] == k
            assert torch.equal(turned[j], torch.rot90(x[i], k, dims=(-2, -1)))
            assert torch.equal(rotate90(x[i], k), torch.rot90(x[i], k, dims=(-2, -1)))
    # label 1 is a quarter turn counter-clockwise on screen: the top-right corner goes top-left
    assert turned[2, 0].tolist() == [[2, 5, 8], [1, 4, 7], [0, 3, 6]]
    assert turned[4, 0].tolist() == [[8, 7, 6], [5, 4, 3], [2, 1, 0]]


def _rotation_inputs(model, x, step):
    """What the backbone sees in the rotation loss at ``step``."""
    seen = []
    hook = model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model.loss({"x": x}, step)
    hook.remove()
    return seen[0]


def test_rotation_augments_before_turning_and_labels_the_turn():
    # flip every image, no crop: the backbone must see the four turns of the mirrored images
    model = build_model(
        configure("rotation", "digits", overrides={"flip_p": 1.0}), DataInfo((1, 8, 8))
    )
    x = torch.rand(3, 1, 8, 8, generator=gen())
    expected, _ = rotation_batch(x.flip(-1))
    assert torch.allclose(_rotation_inputs(model, x, step=0), expected, atol=1e-6)
    # without augmentation the inputs are the plain turns
    plain = build_model(configure("rotation", "digits"), DataInfo((1, 8, 8)))
    assert plain.views is None
    assert torch.equal(_rotation_inputs(plain, x, step=0), rotation_batch(x)[0])


def test_rotation_crops_are_a_function_of_seed_and_step():
    cfg = configure("rotation", "digits", overrides={"crop_min": 0.4, "flip_p": 0.5})
    model = build_model(cfg, DataInfo((1, 8, 8)))
    x = torch.rand(16, 1, 8, 8, generator=gen())
    first = _rotation_inputs(model, x, step=5)
    assert torch.equal(_rotation_inputs(model, x, step=5), first)  # same step: same views
    assert not torch.allclose(_rotation_inputs(model, x, step=6), first)
    # each quarter of the batch is the same crops turned by k quarter turns
    n = len(x)
    for k in range(4):
        assert torch.equal(first[k * n : (k + 1) * n], rotate90(first[:n], k))
