"""moving_sprites: trajectories computed by hand, frames that are sprites' own images."""

import numpy as np
import pytest
import torch

from replab.data.sprites import Sprites
from replab.data.video import MovingSpriteFrames, MovingSprites, reflect


def test_a_bouncing_trajectory_worked_out_by_hand():
    d = MovingSprites()
    # shape 0, direction 0 (right), speed index 3 (4 px/frame), start (20, 7)
    pos = d.positions(np.array([[0, 0, 3, 20, 7]]))[0]
    assert pos[:, 0].tolist() == [20, 24, 28, 30, 26, 22, 18, 14]  # bounces off 31 at 29 + 2
    assert pos[:, 1].tolist() == [7] * 8
    # direction 2 (up: rows decrease), speed 1, start (5, 2): bounces off the top wall
    pos = d.positions(np.array([[1, 2, 0, 5, 2]]))[0]
    assert pos[:, 1].tolist() == [2, 1, 0, 1, 2, 3, 4, 5] and pos[:, 0].tolist() == [5] * 8
    # direction 5 (down-left), speed 2: both coordinates move by sqrt(2) per frame, rounded
    pos = d.positions(np.array([[2, 5, 1, 16, 16]]))[0]
    want = np.floor(16 + np.sqrt(2) * np.arange(8)[:, None] * [-1, 1] + 0.5)
    assert pos.tolist() == want.astype(int).tolist()


def test_reflection_is_a_bouncing_point():
    u = np.linspace(-100, 100, 2001)
    r = reflect(u)
    assert r.min() == 0 and r.max() == 31
    np.testing.assert_allclose(
        reflect(np.array([0.0, 31.0, 32.0, 62.0, -1.0, 93.0])), [0, 31, 30, 0, 1, 31]
    )
    step = np.abs(np.diff(r))
    np.testing.assert_allclose(step, 0.1, atol=1e-9)  # constant speed, walls included


def test_frames_are_the_sprites_images_at_each_position():
    d = MovingSprites()
    f = np.array([[0, 1, 2, 3, 4], [2, 7, 3, 31, 31]])
    clips = d.observations(f)
    assert clips.shape == (2, 8, 1, 64, 64) and clips.dtype == torch.float32
    pos = d.positions(f)
    for i in range(2):
        sprite_factors = np.stack(
            [np.full(8, f[i, 0]), np.full(8, 2), np.zeros(8, int), pos[i, :, 0], pos[i, :, 1]], 1
        )
        assert torch.equal(clips[i], Sprites().observations(sprite_factors))
    frames = MovingSpriteFrames()
    assert torch.equal(
        frames.observations(d.frame_factors(f).reshape(-1, 3)), clips.reshape(-1, 1, 64, 64)
    )


def test_grids_labels_and_info():
    d, frames = MovingSprites(), MovingSpriteFrames()
    assert len(d) == 3 * 8 * 4 * 32 * 32 and d.info.shape == (8, 1, 64, 64)
    assert d.info.kind == "video" and d.info.num_classes == 8
    batch = d.get_batch(np.array([0, 12345]))
    assert batch["y"].tolist() == batch["factors"][:, 1].tolist()  # the label is the direction
    assert len(frames) == 3072 and frames.info.shape == (1, 64, 64)
    assert frames.get_batch(np.array([1024 * 2]))["y"].tolist() == [2]
    v = d.velocities(np.array([[0, 0, 0, 0, 0], [0, 2, 3, 0, 0], [0, 4, 1, 0, 0]]))
    np.testing.assert_allclose(v, [[1, 0], [0, -4], [-2, 0]], atol=1e-12)


@pytest.mark.parametrize(
    "factors, message",
    [
        (np.zeros((2, 4), int), "shape \\[n, 5\\]"),
        (np.array([[0, 8, 0, 0, 0]]), "'direction' \\(column 1\\) must be in 0..7"),
        (np.zeros((1, 5)), "integer indices"),
    ],
)
def test_bad_factors_are_refused(factors, message):
    with pytest.raises(ValueError, match=message):
        MovingSprites().observations(factors)
