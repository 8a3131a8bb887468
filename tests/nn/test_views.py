"""Batched random views: each operation against a direct computation, and reproducibility."""

import pytest
import torch

from replab.nn.views import (
    BRIGHT,
    CONTRAST,
    FLIP,
    GRAY,
    HUE,
    N_PARAMS,
    SAT,
    SH,
    SIGMA,
    SW,
    TX,
    TY,
    Views,
    colour_maps,
    step_generator,
)


def identity(n: int) -> torch.Tensor:
    p = torch.zeros(n, N_PARAMS, dtype=torch.float64)
    p[:, [SW, SH, BRIGHT, CONTRAST, SAT]] = 1.0
    return p


def luma(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


@pytest.mark.parametrize("channels", [1, 3])
def test_identity_parameters_keep_the_image(channels):
    x = torch.rand(4, channels, 8, 8)
    torch.testing.assert_close(Views(blur_p=0.5).apply(x, identity(4)), x)


def test_flip_and_crop_read_the_right_pixels():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16) / 512
    p = identity(2)
    p[0, FLIP] = 1
    # image 1: the top-left 8x8 quarter, upsampled x2 (box centre at -0.5, -0.5 of [-1, 1])
    p[1, SW] = p[1, SH] = 0.5
    p[1, TX] = p[1, TY] = -0.5
    out = Views().apply(x, p)
    torch.testing.assert_close(out[0], x[0].flip(-1))
    # output pixel centre i reads input coordinate (i + 0.5) / 2 - 0.5 (pixel-centre units):
    # bilinear between rows/columns floor and floor + 1, the first clamped at the border
    coords = (torch.arange(16) + 0.5) / 2 - 0.5
    lo = coords.floor().clamp(min=0).long()
    hi = (coords.floor() + 1).clamp(max=15).long()
    frac = (coords - coords.floor()).where(coords >= 0, torch.zeros(()))
    img = x[1, 0]
    rows = img[lo] * (1 - frac[:, None]) + img[hi] * frac[:, None]
    expected = rows[:, lo] * (1 - frac) + rows[:, hi] * frac
    torch.testing.assert_close(out[1, 0], expected)


def test_colour_jitter_matches_the_formulas():
    x = torch.rand(3, 3, 6, 6) * 0.5  # no clamping anywhere below
    v = Views(hue=0.5)
    # brightness 1.3 then contrast 0.6: 0.6 * 1.3 x + 0.4 * mean luma of 1.3 x
    p = identity(3)
    p[0, BRIGHT], p[0, CONTRAST] = 1.3, 0.6
    # saturation 0.5: blend with the luma image
    p[1, SAT] = 0.5
    # grayscale: every channel the luma
    p[2, GRAY] = 1
    out = v.apply(x, p)
    bx = 1.3 * x[0]
    m = luma(bx[None]).mean()
    torch.testing.assert_close(out[0], 0.6 * bx + 0.4 * m)
    torch.testing.assert_close(out[1], 0.5 * x[1] + 0.5 * luma(x[1:2]))
    torch.testing.assert_close(out[2], luma(x[2:3]).expand(3, 6, 6))


def test_hue_rotation_keeps_grey_and_luma_and_cycles():
    p = identity(4)
    p[:, HUE] = torch.tensor([0.25, -0.1, 1.0, 0.5], dtype=torch.float64)
    m = colour_maps(p, 3)
    ones = torch.ones(3, dtype=torch.float64)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    for a in m:
        torch.testing.assert_close(a @ ones, ones)  # grey stays grey
        torch.testing.assert_close(w @ a, w)  # luma unchanged
    torch.testing.assert_close(m[2], torch.eye(3, dtype=torch.float64))  # a full turn
    # half a turn twice is a full turn
    torch.testing.assert_close(m[3] @ m[3], torch.eye(3, dtype=torch.float64))
    # a quarter turn moves pure red to a colour with the same luma and no red left on top
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert not torch.allclose(m[0] @ red, red)


def test_blur_is_a_normalised_gaussian():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    p = identity(1)
    p[0, SIGMA] = 1.0
    out = Views(blur_p=1.0).apply(x, p)[0, 0]
    k = 3  # 10% of 21 pixels, odd, at least 3
    r = torch.arange(k) - k // 2
    g = torch.exp(-0.5 * r.float() ** 2)
    g = g / g.sum()
    expected = torch.zeros(21, 21)
    expected[9:12, 9:12] = g[:, None] * g[None, :]
    torch.testing.assert_close(out, expected)


def test_views_reproducible_per_step_and_different_across_steps():
    x = torch.rand(16, 3, 12, 12)
    v = Views.simclr(blur_p=0.5)
    a = v(x, step_generator(7, 3))
    b = v(x, step_generator(7, 3))
    assert torch.equal(a, b)
    assert not torch.allclose(a, v(x, step_generator(7, 4)))
    assert not torch.allclose(a, v(x, step_generator(8, 3)))
    one, two = v.pair(x, step_generator(7, 3))
    assert not torch.allclose(one, two)  # two different views of each image


def test_shards_are_slices_of_the_global_views():
    x = torch.rand(8, 1, 8, 8)
    v = Views.simclr()
    whole = v.pair(x, step_generator(0, 5))
    for rank in range(2):
        part = v.pair(x[rank * 4 : (rank + 1) * 4], step_generator(0, 5), shard=(rank, 2))
        for w, p in zip(whole, part, strict=True):
            torch.testing.assert_close(p, w[rank * 4 : (rank + 1) * 4])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 64, 48)])
def test_shapes_and_range(shape):
    x = torch.rand(5, *shape)
    out = Views.simclr(blur_p=0.5)(x, step_generator(0, 0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    small = Views(out_size=(4, 4))(x, step_generator(0, 0))
    assert small.shape == (5, shape[0], 4, 4)


def test_crop_areas_follow_the_scale_range():
    v = Views(crop_scale=(0.25, 0.5))
    p = v.sample(2000, step_generator(0, 0), (32, 32))
    area = p[:, SW] * p[:, SH]
    assert area.min() >= 0.25 - 1e-9 and area.max() <= 0.5 + 1e-9
    ratio = p[:, SW] / p[:, SH]
    assert ratio.min() >= 3 / 4 - 1e-9 and ratio.max() <= 4 / 3 + 1e-9
    assert (p[:, TX].abs() <= 1 - p[:, SW] + 1e-12).all()
    assert abs(p[:, FLIP].mean().item() - 0.5) < 0.05


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="flip_p must be in"):
        Views(flip_p=1.5)
    with pytest.raises(ValueError, match="crop_scale"):
        Views(crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match=r"images \[B, C, H, W\]"):
        Views().apply(torch.rand(4, 8, 8), identity(4))
    with pytest.raises(ValueError, match="parameter rows"):
        Views().apply(torch.rand(4, 1, 8, 8), identity(3))
    with pytest.raises(ValueError, match=">= 0"):
        step_generator(-1, 0)
