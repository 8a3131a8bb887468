"""Procedural video: sprites moving at constant velocity and bouncing off the walls.

``moving_sprites`` serves clips ``{"x": float32 [T, 1, 64, 64]}`` (``DataInfo(kind="video",
shape=(8, 1, 64, 64))``), one per point of its factor grid, with ground-truth factors per clip:

=============  ======  ==================================================================
factor          size    values
=============  ======  ==================================================================
shape           3       square, ellipse, heart (``replab.data.sprites``)
direction       8       the initial velocity's angle, 2 pi k / 8 counter-clockwise on screen
                        from "right" (0: right, 2: up, 4: left, 6: down)
speed           4       1, 2, 3 or 4 pixels per frame
pos_x, pos_y    32, 32  the position in the first frame, on dSprites' 32-step position grid
=============  ======  ==================================================================

98,304 clips in all; the label ``y`` is the direction. Every frame is a ``sprites`` image
(rendered by ``replab.data.sprites``, bit for bit) at scale 0.7 and orientation 0, at the
position of that frame, in position steps of one pixel: frame t is at
``p(t) = round(reflect(p0 + t v))`` with ``v = speed (cos a, -sin a)`` (rows grow downwards)
and ``reflect(u) = 31 - |31 - (u mod 62)|``, the path of a point bouncing elastically between
positions 0 and 31 (the walls, where the sprite touches its one-pixel border). The per-frame
positions are ``MovingSprites.positions(factors)``; ``frame_factors(factors)`` gives each frame's
factors in the frame data set's order.

``moving_sprites_frames`` is the frame data set: every frame a clip can show, one per
(shape, pos_x, pos_y) (3,072 images, ``DataInfo(shape=(1, 64, 64))``, label shape), for
evaluating a video model's frame representation with the protocol's per-factor probes.
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import DataInfo, GroundTruthDataset
from replab.data.sprites import CANVAS, SHAPE_NAMES, render_np
from replab.registry import register_dataset

FRAMES = 8
DIRECTIONS = 8
SPEEDS = (1, 2, 3, 4)  # pixels (position steps) per frame
POSITIONS = 32
SCALE_INDEX = 2  # sprites scale linspace(0.5, 1, 6)[2] = 0.7
ORIENTATION_INDEX = 0


def reflect(u: np.ndarray, top: float = POSITIONS - 1) -> np.ndarray:
    """Positions of a point moving freely along ``u`` and bouncing between 0 and ``top``."""
    m = np.mod(u, 2.0 * top)
    return top - np.abs(top - m)


def _frames(shape: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Sprite frames float32 [n, 1, 64, 64] of shapes [n] at integer positions [n, 2] (x, y)."""
    n = len(shape)
    f = np.empty((n, 5), dtype=np.int64)
    f[:, 0] = shape
    f[:, 1] = SCALE_INDEX
    f[:, 2] = ORIENTATION_INDEX
    f[:, 3:] = pos
    return render_np(f)


@register_dataset("moving_sprites")
class MovingSprites(GroundTruthDataset):
    """Clips of 8 frames: a sprite moving at constant velocity, bouncing off the walls."""

    name = "moving_sprites"
    factor_names = ["shape", "direction", "speed", "pos_x", "pos_y"]
    factor_sizes = [len(SHAPE_NAMES), DIRECTIONS, len(SPEEDS), POSITIONS, POSITIONS]
    label_factor = "direction"
    categorical_factors = ("shape", "direction")
    class_names = ["right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right"]
    frames = FRAMES
    info = DataInfo(shape=(FRAMES, 1, CANVAS, CANVAS), num_classes=DIRECTIONS, kind="video")

    def velocities(self, factors) -> np.ndarray:
        """The initial velocity (vx, vy) in pixels per frame [n, 2] (y grows downwards)."""
        f = self.checked_factors(factors)
        angle = 2.0 * np.pi * f[:, 1] / DIRECTIONS
        speed = np.asarray(SPEEDS, dtype=np.float64)[f[:, 2]]
        return np.stack([speed * np.cos(angle), -speed * np.sin(angle)], axis=1)

    def positions(self, factors) -> np.ndarray:
        """Integer positions (x, y) of every frame [n, T, 2], on the 0..31 grid."""
        f = self.checked_factors(factors)
        v = self.velocities(f)
        t = np.arange(FRAMES, dtype=np.float64)[None, :, None]
        path = reflect(f[:, None, 3:5] + t * v[:, None, :])
        # round half up; the tiny offset keeps 0.5 from rounding differently across platforms
        return np.floor(path + 0.5 + 1e-9).astype(np.int64)

    def frame_factors(self, factors) -> np.ndarray:
        """Each frame's (shape, pos_x, pos_y) [n, T, 3]: ``moving_sprites_frames`` factors."""
        f = self.checked_factors(factors)
        shape = np.broadcast_to(f[:, None, :1], (len(f), FRAMES, 1))
        return np.concatenate([shape, self.positions(f)], axis=2)

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Clips float32 [n, 8, 1, 64, 64] of factor indices [n, 5] (``rng`` unused)."""
        f = self.checked_factors(factors)
        pos = self.positions(f).reshape(-1, 2)
        shape = np.repeat(f[:, 0], FRAMES)
        return torch.from_numpy(_frames(shape, pos).reshape(len(f), FRAMES, 1, CANVAS, CANVAS))


@register_dataset("moving_sprites_frames")
class MovingSpriteFrames(GroundTruthDataset):
    """The frames moving_sprites clips show: each shape at each position (3,072 images)."""

    name = "moving_sprites_frames"
    factor_names = ["shape", "pos_x", "pos_y"]
    factor_sizes = [len(SHAPE_NAMES), POSITIONS, POSITIONS]
    label_factor = "shape"
    categorical_factors = ("shape",)
    class_names = SHAPE_NAMES
    info = DataInfo(shape=(1, CANVAS, CANVAS), num_classes=len(SHAPE_NAMES))

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Frames float32 [n, 1, 64, 64] of factor indices [n, 3] (``rng`` unused)."""
        f = self.checked_factors(factors)
        return torch.from_numpy(_frames(f[:, 0], f[:, 1:]))
