"""context: the paper's geometry, the pair labels, and the centred grid encode sees."""

import pytest
import torch

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.context import NEIGHBOUR_OFFSETS, context_geometry, context_grid, context_pairs
from replab.run import build_model


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def coordinate_image(size, batch=1):
    """Channel 0 holds each pixel's row, channel 1 its column."""
    r = torch.arange(size, dtype=torch.float32)
    img = torch.stack([r[:, None].expand(size, size), r[None, :].expand(size, size)])
    return img.expand(batch, 2, size, size).clone()


@pytest.mark.parametrize(
    "size, expected", [(64, (15, 8, 1)), (32, (7, 4, 1)), (28, (6, 3, 1)), (13, (3, 2, 0))]
)
def test_context_geometry_keeps_the_papers_proportions(size, expected):
    patch, gap, jitter = context_geometry(size)
    assert (patch, gap, jitter) == expected
    assert 3 * patch + 2 * gap + 2 * jitter <= size


def test_context_pair_labels_match_the_offset_of_the_patches():
    size, batch = 64, 50
    patch, gap, jitter = context_geometry(size)
    step = patch + gap
    grid = context_grid(coordinate_image(size, batch), patch, gap, jitter, True, gen())
    assert grid.shape == (batch, 9, 2, patch, patch)
    # every patch is a contiguous, in-image window (a wrapped index would break the ramp)
    ramp = torch.arange(patch, dtype=torch.float32)
    assert torch.equal(grid[:, :, 0, :, 0] - grid[:, :, 0, :1, 0], ramp.expand(batch, 9, patch))
    assert torch.equal(grid[:, :, 1, 0, :] - grid[:, :, 1, 0, :1], ramp.expand(batch, 9, patch))
    assert grid.min() >= 0 and grid.max() <= size - 1
    centre, neighbour, labels = context_pairs(grid)
    d_row = neighbour[:, 0, 0, 0] - centre[:, 0, 0, 0]
    d_col = neighbour[:, 1, 0, 0] - centre[:, 1, 0, 0]
    for dr, dc, label in zip(d_row.tolist(), d_col.tolist(), labels.tolist(), strict=True):
        offset = (round(dr / step), round(dc / step))
        assert NEIGHBOUR_OFFSETS.index(offset) == label
        # the gap and the jitter: a neighbour is step +- 2 * jitter px away
        assert abs(dr - offset[0] * step) <= 2 * jitter
        assert abs(dc - offset[1] * step) <= 2 * jitter
    assert NEIGHBOUR_OFFSETS[0] == (-1, -1) and NEIGHBOUR_OFFSETS[7] == (1, 1)
    shifts = (d_row - torch.round(d_row / step) * step).abs()
    assert shifts.max() > 0  # jitter is used


def test_context_encode_is_the_backbone_on_the_centred_grid():
    torch.manual_seed(0)
    model = build_model(configure("context", "sprites"), DataInfo(shape=(1, 28, 28)))
    patch, gap = model.patch, model.gap  # 6, 3: a 24-px grid, 2 px from the border
    x = torch.rand(3, 1, 28, 28)
    z = model.encode(x)
    d = model.backbone.out_dim
    assert z.shape == (3, 9 * d)
    start = (28 - (3 * patch + 2 * gap)) // 2
    for cell in range(9):
        top = start + (cell // 3) * (patch + gap)
        left = start + (cell % 3) * (patch + gap)
        by_hand = model.backbone(x[:, :, top : top + patch, left : left + patch])
        assert torch.allclose(z[:, cell * d : (cell + 1) * d], by_hand, atol=1e-6)


def test_context_refuses_tiny_inputs_and_impossible_geometry():
    with pytest.raises(ConfigError, match="8x8 inputs are too small"):
        context_geometry(8)
    assert context_geometry(8, patch=2, gap=1, jitter=0) == (2, 1, 0)
    with pytest.raises(ConfigError, match="more than the 32 px"):
        context_geometry(32, patch=10, gap=2, jitter=1)
