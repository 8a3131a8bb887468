"""Procedural Multi-dSprites in its "coloured on grayscale" form (after the Multi-Object
Datasets, the benchmark MONet and Slot Attention report on): 64x64 images of 2-5 dSprites
sprites in random colours on a uniform grey background, with instance masks.

Each image is a function of its index alone: ``default_rng([SEED, index])`` draws the number of
sprites (2-5, uniformly), the background's grey level (an integer 0-255, /255), and for each
sprite a point of the dSprites grid (shape, scale, orientation, position; rendered by
``replab.data.sprites``, bit for bit) and a colour (each channel an integer 0-255, /255). Sprites
are painted in order, later ones over earlier ones, so a sprite can be partly or wholly hidden;
``segments`` labels each pixel with the sprite that shows there (0 for the background) and
``object_factors`` gives each sprite's factors and whether any of it shows (``visible``); the
rows of absent sprites are -1. No class label.
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import DataInfo, Dataset, ObjectScenes
from replab.data.sprites import CANVAS, FACTOR_NAMES, FACTOR_SIZES, render_np
from replab.registry import register_dataset

SEED = 20_190_115
SIZE = 60_000
MIN_OBJECTS, MAX_OBJECTS = 2, 5
OBJECT_FACTORS = [*FACTOR_NAMES, "red", "green", "blue", "visible"]


def scene(index: int) -> tuple[int, np.ndarray]:
    """(background grey 0-255, int64 [MAX_OBJECTS, 8] sprite factors and colour, -1 if absent)."""
    rng = np.random.default_rng([SEED, int(index)])
    count = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    grey = int(rng.integers(256))
    objects = np.full((MAX_OBJECTS, 8), -1, dtype=np.int64)
    for k in range(count):
        objects[k, :5] = [int(rng.integers(s)) for s in FACTOR_SIZES]
        objects[k, 5:] = rng.integers(256, size=3)
    return grey, objects


@register_dataset("multi_sprites")
class MultiSprites(ObjectScenes, Dataset):
    """2-5 coloured sprites on grey, 64x64, later ones occluding earlier ones (60,000 images)."""

    name = "multi_sprites"
    info = DataInfo(shape=(3, CANVAS, CANVAS))
    max_objects = MAX_OBJECTS
    object_factor_names = OBJECT_FACTORS
    categorical_object_factors = ("shape", "visible")

    def __len__(self) -> int:
        return SIZE

    def _render(self, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images float32 [n, 3, 64, 64], segments int64 [n, 64, 64], factors [n, 5, 9])."""
        idx = self.checked_indices(indices)
        scenes = [scene(i) for i in idx]
        n = len(idx)
        greys = np.array([g for g, _ in scenes], dtype=np.float32).reshape(n, 1, 1, 1) / 255
        objects = np.stack([o for _, o in scenes]) if n else np.zeros((0, MAX_OBJECTS, 8), int)
        present = objects[:, :, 0] >= 0
        masks = np.zeros((n, MAX_OBJECTS, CANVAS, CANVAS), dtype=bool)
        if present.any():
            masks[present] = render_np(objects[present][:, :5])[:, 0] > 0.5
        image = np.broadcast_to(greys, (n, 3, CANVAS, CANVAS)).copy()
        segments = np.zeros((n, CANVAS, CANVAS), dtype=np.int64)
        colours = objects[:, :, 5:].astype(np.float32) / 255
        for k in range(MAX_OBJECTS):  # painting order: later sprites cover earlier ones
            m = masks[:, k]
            segments[m] = k + 1
            image = np.where(m[:, None], colours[:, k, :, None, None], image)
        visible = np.stack([(segments == k + 1).any((1, 2)) for k in range(MAX_OBJECTS)], 1)
        factors = np.concatenate([objects, np.where(present, visible, -1)[:, :, None]], axis=2)
        return image.astype(np.float32), segments, factors

    def object_factors(self, indices) -> np.ndarray:
        return self._render(indices)[2]

    def segments(self, indices) -> np.ndarray:
        seg = self._render(indices)[1]
        return seg.reshape(len(seg), -1)

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        return {"x": torch.from_numpy(self._render(indices)[0])}
