"""Pretext tasks: their labels against independent computations, Lab and rebalancing by hand."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError, resolve
from replab.data.base import DataInfo
from replab.methods.pretext import (
    NEIGHBOUR_OFFSETS,
    context_geometry,
    context_grid,
    context_pairs,
    in_gamut_ab_bins,
    jigsaw_geometry,
    jigsaw_tiles,
    maximal_hamming_permutations,
    normalise_tiles,
    rebalance_weights,
    rgb_to_lab,
    rotate90,
    rotation_batch,
    shuffle_tiles,
    smooth_prior,
    soft_encode,
)
from replab.train.loop import train
from replab.train.run import build_model, load


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# rotation --------------------------------------------------------------------------------------


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
        resolve("rotation", "digits", overrides={"flip_p": 1.0}), DataInfo((1, 8, 8))
    )
    x = torch.rand(3, 1, 8, 8, generator=gen())
    expected, _ = rotation_batch(x.flip(-1))
    assert torch.allclose(_rotation_inputs(model, x, step=0), expected, atol=1e-6)
    # without augmentation the inputs are the plain turns
    plain = build_model(resolve("rotation", "digits"), DataInfo((1, 8, 8)))
    assert plain.views is None
    assert torch.equal(_rotation_inputs(plain, x, step=0), rotation_batch(x)[0])


def test_rotation_crops_are_a_function_of_seed_and_step():
    cfg = resolve("rotation", "digits", overrides={"crop_min": 0.4, "flip_p": 0.5})
    model = build_model(cfg, DataInfo((1, 8, 8)))
    x = torch.rand(16, 1, 8, 8, generator=gen())
    first = _rotation_inputs(model, x, step=5)
    assert torch.equal(_rotation_inputs(model, x, step=5), first)  # same step: same views
    assert not torch.allclose(_rotation_inputs(model, x, step=6), first)
    # each quarter of the batch is the same crops turned by k quarter turns
    n = len(x)
    for k in range(4):
        assert torch.equal(first[k * n : (k + 1) * n], rotate90(first[:n], k))


# context ---------------------------------------------------------------------------------------


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
    model = build_model(resolve("context", "sprites"), DataInfo(shape=(1, 28, 28)))
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


# jigsaw ----------------------------------------------------------------------------------------


def hamming_min(perms):
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    return d[~np.eye(len(perms), dtype=bool)].min()


@pytest.mark.parametrize("k, n", [(4, 2), (4, 3), (4, 4), (4, 5), (4, 6), (5, 3)])
def test_maximal_hamming_selection_reaches_the_brute_force_optimum(k, n):
    chosen = maximal_hamming_permutations(n, k)
    assert chosen.shape == (n, k) and len({tuple(p) for p in chosen}) == n
    everything = np.array(list(itertools.permutations(range(k))))
    d = (everything[:, None, :] != everything[None, :, :]).sum(-1)
    combos = np.array(list(itertools.combinations(range(len(everything)), n)))
    worst = np.full(len(combos), k)
    for i, j in itertools.combinations(range(n), 2):
        worst = np.minimum(worst, d[combos[:, i], combos[:, j]])
    assert hamming_min(chosen) == worst.max()


def test_default_permutation_set_is_deterministic_and_far_apart():
    perms = maximal_hamming_permutations(100)
    assert perms.shape == (100, 9)
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == 100
    assert perms[0].tolist() == list(range(9))  # starts at the identity
    assert hamming_min(perms) == 6
    # greedy: a smaller set is the start of a larger one (so nothing depends on n but its size)
    assert np.array_equal(maximal_hamming_permutations(10), perms[:10])


def test_jigsaw_label_is_the_index_of_the_permutation_applied():
    cell, tile = jigsaw_geometry(27)  # 9-px cells, 8-px tiles
    assert (cell, tile) == (9, 8)
    # every pixel of cell k holds k
    ids = torch.arange(9, dtype=torch.float32).view(3, 3)
    x = ids.repeat_interleave(cell, 0).repeat_interleave(cell, 1).expand(40, 1, 27, 27)
    tiles = jigsaw_tiles(x, cell, tile, True, gen())
    assert torch.equal(tiles.amin((2, 3, 4)), tiles.amax((2, 3, 4)))  # a tile stays in its cell
    assert torch.equal(tiles[:, :, 0, 0, 0], torch.arange(9.0).expand(40, 9))
    perms_np = maximal_hamming_permutations(100)
    shuffled, labels = shuffle_tiles(tiles, torch.as_tensor(np.array(perms_np)), gen(1))
    shown = shuffled[:, :, 0, 0, 0].long().numpy()  # which tile each position shows
    for b in range(40):
        (index,) = np.flatnonzero((perms_np == shown[b]).all(1))
        assert index == labels[b].item()
    assert len(set(labels.tolist())) > 10


def test_jigsaw_tiles_are_normalised_one_by_one():
    tiles = torch.rand(2, 9, 3, 5, 5) * torch.arange(1.0, 10.0).view(1, 9, 1, 1, 1)
    t = normalise_tiles(tiles)
    assert torch.allclose(t.mean((2, 3, 4)), torch.zeros(2, 9), atol=1e-5)
    assert torch.allclose(t.std((2, 3, 4), unbiased=False), torch.ones(2, 9), atol=1e-3)


def test_jigsaw_refuses_tiny_inputs():
    with pytest.raises(ConfigError, match="8x8 inputs are too small"):
        jigsaw_geometry(8)
    assert jigsaw_geometry(8, tile=2) == (2, 2)
    assert jigsaw_geometry(64) == (21, 18) and jigsaw_geometry(32) == (10, 9)


# colorization ----------------------------------------------------------------------------------

# sRGB (D65) -> CIE Lab. Red, magenta and cyan: the `lab` crate's documented examples
# (docs.rs/lab/0.8.2, rgbs_to_labs); white: MATLAB's rgb2lab documentation; black by definition.
LAB_REFERENCE = [
    ((1.0, 0.0, 0.0), (53.240784, 80.09252, 67.203186)),
    ((1.0, 0.0, 1.0), (60.32421, 98.23433, -60.824894)),
    ((0.0, 1.0, 1.0), (91.11321, -48.08751, -14.131201)),
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
]


def test_lab_conversion_matches_published_values():
    rgb = torch.tensor([c for c, _ in LAB_REFERENCE]).view(-1, 3, 1, 1)
    lab = rgb_to_lab(rgb).view(-1, 3)
    expected = torch.tensor([v for _, v in LAB_REFERENCE])
    assert torch.allclose(lab, expected, atol=0.01), lab


def test_in_gamut_bins_are_the_cells_of_srgb_colours():
    centres = in_gamut_ab_bins()
    assert len(centres) == 262
    assert torch.equal(centres % 10, torch.zeros_like(centres))
    # every colour of a random sample falls in one of the bins, and grey in the (0, 0) bin
    ab = rgb_to_lab(torch.rand(3, 100, 100, generator=gen()))[1:].reshape(2, -1).T
    cells = {tuple(c) for c in (torch.round(ab / 10) * 10).tolist()}
    assert cells <= {tuple(c) for c in centres.tolist()}
    assert [0.0, 0.0] in centres.tolist()


def test_soft_encoding_spreads_over_the_nearest_bins_with_gaussian_weights():
    centres = in_gamut_ab_bins()
    bins, w = soft_encode(torch.tensor([[0.0, 0.0]]), centres, k=5, sigma=5.0)
    assert centres[bins[0, 0]].tolist() == [0.0, 0.0]
    assert {tuple(c) for c in centres[bins[0, 1:]].tolist()} == {
        (10.0, 0.0),
        (-10.0, 0.0),
        (0.0, 10.0),
        (0.0, -10.0),
    }
    e = math.exp(-(10.0**2) / (2 * 5.0**2))
    expected = torch.tensor([1.0, e, e, e, e]) / (1 + 4 * e)
    assert torch.allclose(w[0], expected, atol=1e-6)


def test_rebalancing_weights_follow_the_papers_formula():
    centres = in_gamut_ab_bins()
    q = len(centres)
    prior = torch.rand(q, generator=gen(), dtype=torch.float64) ** 4
    prior /= prior.sum()
    sigma, lam = 5.0, 0.5
    smoothed = smooth_prior(prior, centres, sigma)
    # independent: the same prior on the full ab grid, smoothed by scipy's Gaussian filter
    idx = (centres / 10).long() + 12
    grid = np.zeros((25, 25))
    grid[idx[:, 0], idx[:, 1]] = prior.numpy()
    filtered = gaussian_filter(grid, sigma / 10, mode="constant", truncate=20.0)
    by_scipy = torch.as_tensor(filtered[idx[:, 0], idx[:, 1]])
    by_scipy /= by_scipy.sum()
    assert torch.allclose(smoothed, by_scipy, rtol=1e-6, atol=1e-12)
    w = rebalance_weights(smoothed, lam)
    raw = 1.0 / (0.5 * smoothed.numpy() + 0.5 / q)
    by_hand = raw / (smoothed.numpy() * raw).sum()
    assert np.allclose(w.numpy(), by_hand, rtol=1e-10)
    assert (smoothed * w).sum().item() == pytest.approx(1.0)  # E_p~[w] = 1
    assert torch.allclose(rebalance_weights(smoothed, 1.0), torch.ones(q, dtype=torch.float64))
    assert w[smoothed.argmin()] > 1 > w[smoothed.argmax()]


# the command line and training -----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, message",
    [
        ("colorization", "colorization needs colour images (3 channels, RGB); the data has 1"),
        ("context", "context: 8x8 inputs are too small"),
        ("jigsaw", "jigsaw: 8x8 inputs are too small"),
    ],
)
def test_refusals_through_the_cli_exit_2_one_line(tmp_path, method, message):
    result = CliRunner().invoke(
        app, ["train", method, "--data", "digits", "--out", str(tmp_path / "run"), "-q"]
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "method, data, overrides",
    [
        ("rotation", "digits", {}),
        ("context", "digits", {"patch_size": 2, "gap": 1, "jitter": 0}),
        ("jigsaw", "digits", {"tile_size": 2, "num_permutations": 10}),
        ("colorization", "color_sprites", {"train.lr": 1e-3}),
    ],
)
def test_each_method_trains_a_few_steps_with_finite_losses(tmp_path, method, data, overrides):
    cfg = resolve(
        method,
        data,
        overrides={"train.steps": 3, "train.batch_size": 8, "train.log_every": 1, **overrides},
    )
    run = train(cfg, tmp_path / "run", progress=False)
    logs = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(logs) == 3
    assert all(math.isfinite(r["loss"]) and 0 <= r["accuracy"] <= 1 for r in logs)
    loaded = load(tmp_path / "run", device="cpu")
    x = torch.rand(2, *run.model.info.shape)
    assert torch.allclose(loaded.encode(x), run.model.encode(x), atol=1e-6)
    if method == "colorization":  # the prior's counts are saved with the model
        assert loaded.model.bin_counts.sum() == 3 * 8 * 16 * 16
