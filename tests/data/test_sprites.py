"""Procedural dSprites (``sprites``, ``color_sprites``, ``noisy_sprites``).

The geometric checks are exhaustive where that is cheap: positions are whole-pixel translations
(checked), so the 3 x 6 x 40 (shape, scale, orientation) images at one position decide every
single-factor comparison of shape, scale and orientation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from replab.data import GroundTruthDataset, make_dataset
from replab.data import sprites as S

NAMES = ["sprites", "color_sprites", "noisy_sprites"]
SIZES = [3, 6, 40, 32, 32]
N_IMAGES = 3 * 6 * 40 * 32 * 32  # 737,280
# The documented geometry, written out again here rather than imported.
SCALES = np.linspace(0.5, 1.0, 6)
ANGLES = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
RADIUS = 15.5  # pixels, enclosing circle of every shape at scale 1
CENTRE_X0, CENTRE_Y0 = 16.875, 16.625  # pixel coordinates (x right, y down) at position 0


@pytest.fixture(scope="module")
def datasets():
    return {name: make_dataset(name) for name in NAMES}


@pytest.fixture(scope="module")
def sprites(datasets):
    return datasets["sprites"]


@pytest.fixture(scope="module")
def canonical(sprites):
    """Every (shape, scale, orientation) at position (15, 15): bool [3, 6, 40, 64, 64]."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SIZES[:3]], indexing="ij"), -1)
    f = np.concatenate([grid.reshape(-1, 3), np.full((720, 2), 15)], axis=1)
    return sprites.observations(f).view(3, 6, 40, 64, 64) > 0.5


def _random_factors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    f[:4, 3:] = [[0, 0], [31, 31], [0, 31], [31, 0]]  # the corners of the position range
    return f


# ----------------------------------------------------------------------------------------------
# Interface and grid


def test_registered_with_the_dsprites_grid(datasets):
    for name, ds in datasets.items():
        assert isinstance(ds, GroundTruthDataset)
        assert ds.name == name
        assert len(ds) == N_IMAGES == 737_280
        assert ds.factor_names == ["shape", "scale", "orientation", "pos_x", "pos_y"]
        assert list(ds.factor_sizes) == SIZES
        assert ds.label_factor == "shape"
        assert ds.class_names == ["square", "ellipse", "heart"]
        assert ds.info.num_classes == 3 and ds.info.kind == "image"
        assert ds.info.shape == ((1, 64, 64) if name == "sprites" else (3, 64, 64))


def test_index_and_factors_round_trip(sprites):
    rng = np.random.default_rng(0)
    idx = np.concatenate([[0, 1, 31, 32, N_IMAGES - 1], rng.integers(0, N_IMAGES, 5000)])
    f = sprites.index_to_factors(idx)
    assert f.shape == (len(idx), 5)
    assert (f >= 0).all() and (f < np.array(SIZES)).all()
    np.testing.assert_array_equal(sprites.factors_to_index(f), idx)
    np.testing.assert_array_equal(f[0], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f[1], [0, 0, 0, 0, 1])  # pos_y varies fastest
    np.testing.assert_array_equal(f[3], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(f[4], np.array(SIZES) - 1)
    # Every factor vector of a sample maps to a distinct index and back.
    g = sprites.sample_factors(2000, rng)
    np.testing.assert_array_equal(sprites.index_to_factors(sprites.factors_to_index(g)), g)


def test_same_factors_give_the_same_images(datasets):
    rng = np.random.default_rng(1)
    idx = rng.integers(0, N_IMAGES, 64)
    for ds in datasets.values():
        f = ds.index_to_factors(idx)
        batch = ds.get_batch(idx)
        assert torch.equal(batch["x"], ds.get_batch(idx)["x"])
        assert torch.equal(batch["x"], ds.observations(f))
        assert torch.equal(ds.observations(f), ds.observations(f))
        # An image does not depend on the batch it is rendered in.
        assert torch.equal(ds.get_batch(idx[5:6])["x"][0], batch["x"][5])
        assert torch.equal(ds.observations(f[::-1].copy()), batch["x"].flip(0))
        assert torch.equal(batch["y"], torch.as_tensor(f[:, 0]))
        assert torch.equal(batch["factors"], torch.as_tensor(f))
        assert batch["y"].dtype == batch["factors"].dtype == torch.int64
        item = ds[int(idx[3])]
        assert torch.equal(item["x"], batch["x"][3])


def test_images_are_binary_nonempty_and_inside_the_canvas(sprites):
    x = sprites.observations(_random_factors(500, 2))
    assert x.dtype == torch.float32 and x.shape == (500, 1, 64, 64)
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    assert (x.sum((1, 2, 3)) > 50).all()
    # An empty one-pixel border: no sprite is ever cut by the canvas edge.
    for edge in (x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]):
        assert edge.sum() == 0
    assert sprites.observations(np.zeros((0, 5), dtype=np.int64)).shape == (0, 1, 64, 64)


def test_fast_renderer_is_the_full_canvas_inside_test():
    f = _random_factors(400, 3)
    assert torch.equal(S._render(f), S._render_full(f))


def test_geometry_matches_the_documented_formulas(sprites):
    """An independent float64 evaluation of the documented inside-tests at pixel centres."""
    f = _random_factors(300, 4)
    x = sprites.observations(f)[:, 0].numpy() > 0.5
    pixel = np.arange(64) + 0.5
    for k, (shape, scale, orient, px, py) in enumerate(f):
        size = SCALES[scale] * RADIUS
        cx, cy = CENTRE_X0 + 31.0 * POSITIONS[px], CENTRE_Y0 + 31.0 * POSITIONS[py]
        dx, up = pixel[None, :] - cx, cy - pixel[:, None]  # x right, y up
        c, s = math.cos(ANGLES[orient]), math.sin(ANGLES[orient])
        u, v = (c * dx + s * up) / size, (c * up - s * dx) / size
        if shape == 0:
            g = np.maximum(abs(u), abs(v)) - 1 / math.sqrt(2)
        elif shape == 1:
            g = u**2 + (v / 0.5) ** 2 - 1
        else:
            hx, hy = 1.25 * u, 1.25 * v + 0.25
            g = (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3
        # Pixels with a centre on the boundary (|g| ~ 0) may go either way.
        assert (x[k] | (g > -1e-6)).all() and (~x[k] | (g < 1e-6)).all(), f[k]


def test_orientation_is_counter_clockwise_and_the_heart_points_down(canonical):
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for orient in (3, 5, 8):  # 28, 46 and 74 degrees: the ellipse's long axis goes up-right
        lit = canonical[1, 5, orient]
        xs, ys = cols[lit], -rows[lit]
        assert ((xs - xs.mean()) * (ys - ys.mean())).mean() > 0
    for orient in (32, 34, 37):  # -64, -46 and -18 degrees: down-right
        lit = canonical[1, 5, orient]
        xs, ys = cols[lit], -rows[lit]
        assert ((xs - xs.mean()) * (ys - ys.mean())).mean() < 0
    heart = canonical[2, 5, 0]
    lit_rows = torch.nonzero(heart.any(1)).flatten()
    top, bottom = heart[lit_rows[0]], heart[lit_rows[-1]]
    centre = CENTRE_X0 + 15 - 0.5  # in pixel indices (pixel i has centre i + 0.5)
    assert not top[int(round(centre))]  # the dip between the two lobes
    assert abs(torch.nonzero(top).float().mean() - centre) < 1.0
    assert torch.nonzero(top).float().std() > 5
    assert abs(torch.nonzero(bottom).float().mean() - centre) < 1.0  # the tip
    assert bottom.sum() <= 3
    ellipse = canonical[1, 5, 0]
    assert ellipse.any(0).sum() == 31 and ellipse.any(1).sum() < 17  # long axis horizontal


# ----------------------------------------------------------------------------------------------
# Every factor matters, except for the symmetries


def test_orientation_equal_images_are_only_the_symmetries(canonical):
    """Exhaustive over shape x scale x 40 x 40 orientation pairs.

    The shapes' symmetries are rotations by 90 (square), 180 (ellipse) and 360 degrees (heart);
    on the grid of 360/39-degree steps only 0 and 2 pi (indices 0 and 39) are a whole turn apart
    (a quarter or half turn is not a whole number of steps), so (0, 39) is the only pair of equal
    images, for every shape and scale. Every other pair differs in at least 3 pixels.
    """
    for shape in range(3):
        for scale in range(6):
            flat = canonical[shape, scale].reshape(40, -1).float()
            area = flat.sum(1)
            differ = (area[:, None] + area[None, :] - 2 * flat @ flat.T).round().long()
            equal = torch.nonzero(differ == 0).tolist()
            expected = [[i, i] for i in range(40)] + [[0, 39], [39, 0]]
            assert sorted(equal) == sorted(expected), (shape, scale)
            differ.fill_diagonal_(10**6)
            differ[0, 39] = differ[39, 0] = 10**6
            assert differ.min() >= 3, (shape, scale)


def test_the_inside_tests_have_exactly_the_documented_symmetries():
    """The square is invariant under a quarter turn, the ellipse under a half turn (both off the
    orientation grid); the heart under neither, only under a left-right mirror."""
    rng = np.random.default_rng(12)
    u, v = (torch.as_tensor(rng.uniform(-1.1, 1.1, 200_000), dtype=torch.float32) for _ in "uv")
    square, ellipse, heart = (S._inside(shape, u, v) for shape in range(3))
    assert torch.equal(square, S._inside(0, -v, u))  # (u, v) turned by 90 degrees
    assert not torch.equal(ellipse, S._inside(1, -v, u))
    assert torch.equal(ellipse, S._inside(1, -u, -v))  # 180 degrees
    assert not torch.equal(heart, S._inside(2, -u, -v))
    assert torch.equal(heart, S._inside(2, -u, v))  # mirror
    for inside in (square, ellipse, heart):
        assert inside.any() and not inside.all()
        assert not (inside & (u * u + v * v > 1.0001)).any()  # within the unit circle


def test_scale_grows_the_area_strictly_and_shapes_differ(canonical):
    area = canonical.sum((-1, -2)).float()  # [3, 6, 40]
    assert (area[:, 1:] > area[:, :-1]).all()
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert (canonical[a] != canonical[b]).flatten(2).any(-1).all()
    # Areas grow like scale**2.
    ratio = area[:, -1].mean(-1) / area[:, 0].mean(-1)
    assert torch.allclose(ratio, torch.full((3,), 4.0), rtol=0.03)


def test_areas_match_the_shape_formulas(canonical):
    grid = np.linspace(-1.5, 1.5, 1501)
    hx, hy = np.meshgrid(grid, grid)
    x2, y2 = hx * hx, hy * hy
    t = x2 + y2 - 1
    heart_area = (t * t * t <= x2 * y2 * hy).mean() * 3.0**2  # ~3.66
    unit_area = [2.0, math.pi * 1.0 * 0.5, heart_area / 1.25**2]  # square (2/sqrt2)**2, ...
    area = canonical.sum((-1, -2)).double().numpy()
    for scale, s in enumerate(SCALES):
        size = s * RADIUS
        half_side = size / math.sqrt(2)
        expected = [a * size**2 for a in unit_area]
        assert expected[0] == pytest.approx((2 * half_side) ** 2)
        for shape in range(3):
            counts = area[shape, scale]
            assert counts.mean() == pytest.approx(expected[shape], rel=0.015)
            assert np.abs(counts / expected[shape] - 1).max() < 0.1
        # A square's pixel count is within half its perimeter (+1) of its area.
        assert np.abs(area[0, scale] - expected[0]).max() <= 4 * half_side + 1
        # The formulas' order: heart > square > ellipse, at every scale (orientation mean).
        assert area[2, scale].mean() > area[0, scale].mean() > area[1, scale].mean()


def test_position_is_an_exact_translation_moving_the_centre_of_mass(sprites):
    rng = np.random.default_rng(5)
    base = _random_factors(150, 6)
    x0 = sprites.observations(base)[:, 0]
    coords = torch.arange(64.0)
    # pos_x moves the columns (dim 1 of an image) right, pos_y the rows (dim 0) down.
    for column, dim in ((3, 1), (4, 0)):
        moved = base.copy()
        moved[:, column] = (base[:, column] + rng.integers(1, 32, len(base))) % 32
        x1 = sprites.observations(moved)[:, 0]
        shift = moved[:, column] - base[:, column]
        for k in range(len(base)):  # rolled pixels wrap around through the empty border
            assert torch.equal(torch.roll(x0[k], int(shift[k]), dims=dim), x1[k])
        profile0, profile1 = x0.sum(2 - dim), x1.sum(2 - dim)  # [n, 64] along the moved axis
        com0 = (profile0 * coords).sum(1) / profile0.sum(1)
        com1 = (profile1 * coords).sum(1) / profile1.sum(1)
        expected = 31.0 * (POSITIONS[moved[:, column]] - POSITIONS[base[:, column]])
        np.testing.assert_allclose((com1 - com0).numpy(), expected, atol=1e-3)


def test_changing_any_single_factor_changes_the_image(sprites):
    """From 400 random bases, each factor changed to another random value."""
    rng = np.random.default_rng(7)
    base = _random_factors(400, 8)
    x0 = sprites.observations(base)
    for column, size in enumerate(SIZES):
        moved = base.copy()
        moved[:, column] = (base[:, column] + rng.integers(1, size, len(base))) % size
        same = (sprites.observations(moved) == x0).flatten(1).all(1).numpy()
        for k in np.flatnonzero(same):  # only orientation 0 <-> 39
            assert column == 2 and {base[k, 2], moved[k, 2]} == {0, 39}, (base[k], moved[k])
    # The exact symmetry holds at every scale, position and shape.
    sym = base.copy()
    sym[:, 2] = 0
    other = sym.copy()
    other[:, 2] = 39
    assert torch.equal(sprites.observations(sym), sprites.observations(other))


# ----------------------------------------------------------------------------------------------
# Colour and noise


def test_color_sprites_are_the_sprite_times_a_colour_in_half_to_one(datasets):
    ds, plain = datasets["color_sprites"], datasets["sprites"]
    f = _random_factors(300, 9)
    x, mask = ds.observations(f), plain.observations(f)
    assert x.shape == (300, 3, 64, 64) and x.dtype == torch.float32
    on = mask.expand_as(x) > 0.5
    assert (x[~on] == 0).all()  # black background
    colour = ds.colors(f)
    assert colour.shape == (300, 3) and (colour >= 0.5).all() and (colour <= 1).all()
    assert torch.equal(x, mask * colour[:, :, None, None])
    # On the sprite every pixel has the same colour, so channel ratios are constant.
    lit = torch.where(on, x, torch.nan).flatten(2)  # [n, 3, pixels], nan off the sprite
    assert torch.equal(lit.nan_to_num(2.0).amin(-1), colour)
    assert torch.equal(lit.nan_to_num(-1.0).amax(-1), colour)
    # Colours vary across images and channels, roughly uniform on [0.5, 1].
    assert colour.std(0).min() > 0.1 and abs(colour.mean().item() - 0.75) < 0.03
    assert colour.min() < 0.53 and colour.max() > 0.97
    # With an rng the colour is drawn from it: reproducible for a seed, different across seeds.
    r1 = ds.observations(f, rng=np.random.default_rng(0))
    assert torch.equal(r1, ds.observations(f, rng=np.random.default_rng(0)))
    assert not torch.equal(r1, ds.observations(f, rng=np.random.default_rng(1)))
    drawn = ds.colors(f, rng=np.random.default_rng(0))
    assert (drawn >= 0.5).all() and (drawn <= 1).all()
    assert torch.equal(r1, mask * drawn[:, :, None, None])
    torch_drawn = ds.colors(f, rng=torch.Generator().manual_seed(0))
    assert (torch_drawn >= 0.5).all() and (torch_drawn <= 1).all()


def test_noisy_sprites_are_a_white_sprite_on_uniform_noise(datasets):
    ds, plain = datasets["noisy_sprites"], datasets["sprites"]
    f = _random_factors(100, 10)
    x, mask = ds.observations(f), plain.observations(f)
    assert x.shape == (100, 3, 64, 64) and x.dtype == torch.float32
    noise = ds.noise(f)
    assert torch.equal(x, torch.clamp(mask + noise, max=1.0))  # min(x + noise, 1)
    on = mask.expand_as(x) > 0.5
    assert (x[on] == 1).all()
    background = x[~on]
    assert (background >= 0).all() and (background <= 1).all()
    assert abs(background.mean().item() - 0.5) < 0.01
    assert abs(background.std().item() - 1 / math.sqrt(12)) < 0.01
    # Independent across pixels, channels and images.
    assert not torch.equal(noise[0, 0], noise[0, 1]) and not torch.equal(noise[0], noise[1])
    flat = noise.flatten(1)
    corr = torch.corrcoef(flat[:20])
    assert (corr - torch.eye(20)).abs().max() < 0.05
    pairs = torch.stack([noise[..., :-1].flatten(), noise[..., 1:].flatten()])
    neighbours = torch.corrcoef(pairs)
    assert abs(neighbours[0, 1].item()) < 0.01
    # With an rng the noise is drawn from it.
    r1 = ds.observations(f, rng=np.random.default_rng(0))
    assert torch.equal(r1, ds.observations(f, rng=np.random.default_rng(0)))
    assert not torch.equal(r1, x)
    assert (r1[on] == 1).all() and (r1 >= 0).all() and (r1 <= 1).all()


# ----------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("name", NAMES)
def test_bad_factors_raise_a_one_line_value_error(datasets, name):
    ds = datasets[name]
    good = _random_factors(4, 11)
    for bad in (good[:, :4], good[0], good.astype(np.float64), good.astype(bool), [[0, 0]]):
        with pytest.raises(ValueError, match=r"factors must") as info:
            ds.observations(bad)
        assert "\n" not in str(info.value)
    for column, (factor, size) in enumerate(zip(ds.factor_names, SIZES, strict=True)):
        for value in (-1, size):
            bad = good.copy()
            bad[2, column] = value
            with pytest.raises(ValueError, match=rf"'{factor}'.*0\.\.{size - 1}.*{value}") as info:
                ds.observations(bad)
            assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        ds.get_batch(np.array([N_IMAGES]))
    # Torch tensors of indices are fine.
    assert torch.equal(ds.observations(torch.as_tensor(good)), ds.observations(good))


def test_rendering_on_a_device_gives_the_cpu_renderers_pixels():
    """``render_on`` (run here with device=cpu) copies the same patches as ``render_np``; the
    data set's ``get_batch_on`` serves the same batch as ``get_batch``, subsets included."""
    from replab.data.sprites import render_np, render_on

    data = make_dataset("sprites")
    rng = np.random.default_rng(3)
    factors = data.sample_factors(300, rng)
    assert torch.equal(
        render_on(factors, torch.device("cpu")), torch.from_numpy(render_np(factors))
    )
    train = data.split("train")
    idx = rng.integers(0, len(train), 64)
    host, device = train.get_batch(idx), train.get_batch_on(idx, torch.device("cpu"))
    assert host.keys() == device.keys()
    assert all(torch.equal(host[k], device[k]) for k in host)
    with pytest.raises(
        ValueError, match="'pos_y' .* got 32"
    ):  # checked on the host, before the device
        data.observations_on(np.array([[0, 0, 0, 0, 32]]), torch.device("cpu"))
