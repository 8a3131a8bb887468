"""Procedural Tetrominoes (after the Multi-Object Datasets' ``tetrominoes``, used by IODINE and
Slot Attention): 35x35 colour images of three Tetris pieces on black, with instance masks.

Each image is a function of its index alone: ``default_rng([SEED, index])`` draws, piece by
piece, one of the 19 fixed tetrominoes (the 7 free pieces in all their distinct rotations), one
of 6 colours and a place on a 7x7 grid of 5-pixel blocks, drawing the place again until the
piece overlaps no earlier one. Pieces never overlap, so every piece is whole in the image and its
mask is exact. This is replab's rendering of the same idea, not the release file (whose pieces
sit at pixel offsets); ``segments`` and ``object_factors`` (shape 0-18, colour 0-5, top row and
left column in blocks) are the truth the ``ObjectScenes`` interface promises. No class label.
A piece with no free place left (one image in 60,000) is drawn again, so every index renders.
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import DataInfo, Dataset, ObjectScenes
from replab.registry import register_dataset

SEED = 20_200_601
SIZE = 60_000
PIECES = 3
BLOCK = 5
GRID = 7  # blocks per side: 35 pixels
COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32
)  # red, green, blue, yellow, magenta, cyan


def _rotations(cells: list[tuple[int, int]]) -> list[frozenset]:
    """The distinct rotations of a piece, each moved to touch row 0 and column 0."""
    out: list[frozenset] = []
    current = cells
    for _ in range(4):
        r0 = min(r for r, _ in current)
        c0 = min(c for _, c in current)
        shape = frozenset((r - r0, c - c0) for r, c in current)
        if shape not in out:
            out.append(shape)
        current = [(c, -r) for r, c in current]  # a quarter turn
    return out


FREE_PIECES = {  # the 7 free tetrominoes, as block cells (row, column)
    "I": [(0, 0), (0, 1), (0, 2), (0, 3)],
    "O": [(0, 0), (0, 1), (1, 0), (1, 1)],
    "T": [(0, 0), (0, 1), (0, 2), (1, 1)],
    "S": [(0, 1), (0, 2), (1, 0), (1, 1)],
    "Z": [(0, 0), (0, 1), (1, 1), (1, 2)],
    "J": [(0, 0), (1, 0), (1, 1), (1, 2)],
    "L": [(0, 2), (1, 0), (1, 1), (1, 2)],
}
SHAPES = [sorted(s) for cells in FREE_PIECES.values() for s in _rotations(cells)]  # 19
SHAPE_NAMES = [name for name, cells in FREE_PIECES.items() for _ in _rotations(cells)]


def _fits_somewhere(cells: list[tuple[int, int]], taken: set[tuple[int, int]]) -> bool:
    """Whether the piece has a place on the grid that overlaps no taken block. After two pieces
    (8 blocks) the O piece always has one: the grid holds 9 disjoint 2x2 squares."""
    height = 1 + max(r for r, _ in cells)
    width = 1 + max(c for _, c in cells)
    return any(
        not {(row + r, col + c) for r, c in cells} & taken
        for row in range(GRID - height + 1)
        for col in range(GRID - width + 1)
    )


def scene_factors(index: int) -> np.ndarray:
    """int64 [PIECES, 4]: (shape, colour, top row, left column) of each piece of image ``index``."""
    rng = np.random.default_rng([SEED, int(index)])
    taken: set[tuple[int, int]] = set()
    out = np.zeros((PIECES, 4), dtype=np.int64)
    for k in range(PIECES):
        shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
        while not _fits_somewhere(SHAPES[shape], taken):
            shape = int(rng.integers(len(SHAPES)))
        cells = SHAPES[shape]
        height = 1 + max(r for r, _ in cells)
        width = 1 + max(c for _, c in cells)
        while True:
            row, col = int(rng.integers(GRID - height + 1)), int(rng.integers(GRID - width + 1))
            placed = {(row + r, col + c) for r, c in cells}
            if not placed & taken:
                break
        taken |= placed
        out[k] = (shape, colour, row, col)
    return out


def block_segments(factors: np.ndarray) -> np.ndarray:
    """int64 [n, GRID, GRID]: 0 background, k+1 where piece k lies, from factors [n, PIECES, 4]."""
    out = np.zeros((len(factors), GRID, GRID), dtype=np.int64)
    for i, pieces in enumerate(factors):
        for k, (shape, _, row, col) in enumerate(pieces):
            for r, c in SHAPES[shape]:
                out[i, row + r, col + c] = k + 1
    return out


@register_dataset("tetrominoes")
class Tetrominoes(ObjectScenes, Dataset):
    """Three coloured Tetris pieces on black, 35x35, with masks (60,000 images)."""

    name = "tetrominoes"
    info = DataInfo(shape=(3, GRID * BLOCK, GRID * BLOCK))
    max_objects = PIECES
    object_factor_names = ["shape", "colour", "row", "col"]
    categorical_object_factors = ("shape", "colour")

    def __len__(self) -> int:
        return SIZE

    def object_factors(self, indices) -> np.ndarray:
        idx = self.checked_indices(indices)
        return np.stack([scene_factors(i) for i in idx]) if len(idx) else np.zeros((0, 3, 4), int)

    def segments(self, indices) -> np.ndarray:
        blocks = block_segments(self.object_factors(indices))
        pixels = blocks.repeat(BLOCK, axis=1).repeat(BLOCK, axis=2)
        return pixels.reshape(len(blocks), -1)

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        factors = self.object_factors(indices)
        blocks = block_segments(factors)
        palette = np.zeros((len(factors), PIECES + 1, 3), dtype=np.float32)
        palette[:, 1:] = COLOURS[factors[:, :, 1]]
        image = np.take_along_axis(palette, blocks.reshape(len(blocks), -1, 1), axis=1)
        image = image.reshape(len(blocks), GRID, GRID, 3).transpose(0, 3, 1, 2)
        image = image.repeat(BLOCK, axis=2).repeat(BLOCK, axis=3)
        return {"x": torch.from_numpy(np.ascontiguousarray(image))}
