"""The frames of DARLA's seek-avoid task (Higgins et al. 2017, after their DeepMind Lab task),
drawn on replab's sprites: a 3x3 grid seen from above, 64x64 colour images, 20-pixel cells.

An agent (a white cross) walks on the grid; one object is a heart (reward +1 when reached),
the other a square (-1). Colour is a nuisance: in the **source** domain the heart is red or
green and the square blue or yellow; in the **target** domain the pairings are swapped (heart
blue or yellow, square red or green), so no object in the target has a colour-shape pairing
the source ever shows. A policy that reads shape transfers; one that reads colour does not.

Factors (a full grid of 2,916 states per domain; entities may share a cell, drawn square,
heart, agent in that order): agent_row, agent_col, heart_row, heart_col, square_row,
square_col (3 each), heart_colour and square_colour (2 each: which of the domain's two colours).

Why 3x3 and not the 5x5 first tried: on 5x5, with 12-pixel objects, beta_vae and vae trained for
1,500 steps (the budget the 30-minute comparison allows) encoded so little of where things are
(a 10-nearest-neighbour readout of the agent's row from vae's codes: 0.45, chance 0.2) that no
DQN learned the task on their codes; on 3x3 with 20-pixel objects the same readout reads 0.99.
``seek_avoid`` is the source domain's frames and ``seek_avoid_target`` the target's: the
encoders DARLA compares learn from the first (``replab darla``); ``seek_avoid`` names the second
as its shifted rendering (the ``transfer`` part).
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import DataInfo, GroundTruthDataset
from replab.data.sprites import shape_mask
from replab.registry import register_dataset

GRID = 3
CELL = 20
OFFSET = 2  # (64 - 3 * 20) / 2
CANVAS = 64
PALETTE = np.array(
    [[1.0, 0.2, 0.2], [0.2, 0.9, 0.2], [0.3, 0.3, 1.0], [1.0, 0.9, 0.1]], dtype=np.float32
)  # red, green, blue, yellow
# domain -> (the heart's two colours, the square's two colours), as indices into PALETTE
DOMAINS = {"source": ((0, 1), (2, 3)), "target": ((2, 3), (0, 1))}
FACTOR_NAMES = ["agent_row", "agent_col", "heart_row", "heart_col", "square_row", "square_col",
                "heart_colour", "square_colour"]  # fmt: skip
FACTOR_SIZES = [GRID] * 6 + [2, 2]
SQUARE, HEART = 0, 2  # sprites' shape indices


def _cross() -> np.ndarray:
    m = np.zeros((CELL, CELL), dtype=np.float32)
    mid, half, arm = CELL // 2, max(1, CELL // 10), CELL // 2 - 1
    m[mid - half : mid + half, mid - arm : mid + arm] = 1
    m[mid - arm : mid + arm, mid - half : mid + half] = 1
    return m


_MASKS: dict[str, np.ndarray] = {}


def _masks() -> dict[str, np.ndarray]:
    if not _MASKS:
        _MASKS["square"] = shape_mask(SQUARE, CELL, radius=CELL * 0.46)
        _MASKS["heart"] = shape_mask(HEART, CELL, radius=CELL * 0.48)
        _MASKS["agent"] = _cross()
    return _MASKS


def render_states(factors: np.ndarray, domain: str) -> np.ndarray:
    """Images float32 [n, 3, 64, 64] of factor rows [n, 8] in ``domain``'s colours."""
    f = np.asarray(factors, dtype=np.int64)
    heart_colours, square_colours = DOMAINS[domain]
    masks = _masks()
    out = np.zeros((len(f), 3, CANVAS, CANVAS), dtype=np.float32)
    white = np.ones(3, dtype=np.float32)
    for i, row in enumerate(f):
        entities = (
            ("square", row[4], row[5], PALETTE[square_colours[row[7]]]),
            ("heart", row[2], row[3], PALETTE[heart_colours[row[6]]]),
            ("agent", row[0], row[1], white),
        )
        for name, r, c, colour in entities:
            y, x = OFFSET + CELL * r, OFFSET + CELL * c
            m = masks[name]
            patch = out[i, :, y : y + CELL, x : x + CELL]
            patch[:] = np.where(m > 0, colour[:, None, None] * m, patch)
    return out


class _SeekAvoidFrames(GroundTruthDataset):
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    label_factor = "heart_col"
    categorical_factors = ("heart_colour", "square_colour")
    info = DataInfo(shape=(3, CANVAS, CANVAS), num_classes=GRID)
    domain = "source"

    def observations(self, factors, rng=None) -> torch.Tensor:
        return torch.from_numpy(render_states(self.checked_factors(factors), self.domain))


@register_dataset("seek_avoid")
class SeekAvoid(_SeekAvoidFrames):
    """DARLA's seek-avoid frames, source domain (heart red/green, square blue/yellow)."""

    name = "seek_avoid"
    domain = "source"
    shifted_rendering = "seek_avoid_target"


@register_dataset("seek_avoid_target")
class SeekAvoidTarget(_SeekAvoidFrames):
    """The same states in the target domain's colours (heart blue/yellow, square red/green)."""

    name = "seek_avoid_target"
    domain = "target"
    shifted_rendering = "seek_avoid"
