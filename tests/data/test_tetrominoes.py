"""Tetrominoes: the 19 fixed pieces, images and masks that are functions of the index, masks
that partition the image with whole pieces, and colours that follow the masks."""

import numpy as np
import pytest

from replab.data import ObjectScenes, make_dataset
from replab.data.tetrominoes import (
    BLOCK,
    COLOURS,
    GRID,
    SHAPES,
    _fits_somewhere,
    block_segments,
    scene_factors,
)


def connected(cells) -> bool:
    cells = set(cells)
    seen, todo = set(), [next(iter(cells))]
    while todo:
        r, c = todo.pop()
        if (r, c) in seen:
            continue
        seen.add((r, c))
        todo += [n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if n in cells]
    return seen == cells


def test_the_nineteen_fixed_tetrominoes():
    assert len(SHAPES) == 19 and len({tuple(s) for s in SHAPES}) == 19
    assert all(len(s) == 4 and connected(s) for s in SHAPES)
    assert [(0, 0), (0, 1), (0, 2), (0, 3)] in SHAPES and [(0, 0), (1, 0), (2, 0), (3, 0)] in SHAPES


def test_pieces_land_where_their_factors_say():
    # an I lying flat at the top left, the O at row 2 column 3, a vertical I at the right edge
    vertical_i = SHAPES.index([(0, 0), (1, 0), (2, 0), (3, 0)])
    o = SHAPES.index([(0, 0), (0, 1), (1, 0), (1, 1)])
    factors = np.array([[[0, 0, 0, 0], [o, 1, 2, 3], [vertical_i, 2, 3, 6]]])
    want = np.zeros((GRID, GRID), dtype=np.int64)
    want[0, 0:4] = 1
    want[2:4, 3:5] = 2
    want[3:7, 6] = 3
    np.testing.assert_array_equal(block_segments(factors)[0], want)


def test_images_and_masks_are_functions_of_the_index():
    data = make_dataset("tetrominoes")
    assert isinstance(data, ObjectScenes) and not data.has_labels
    idx = np.array([0, 7, 59_999])
    a, b = data.get_batch(idx)["x"], make_dataset("tetrominoes").get_batch(idx)["x"]
    assert a.shape == (3, 3, 35, 35) and bool((a == b).all())
    np.testing.assert_array_equal(data.segments(idx), data.segments(idx))
    assert not bool((a[0] == a[1]).all())


def test_masks_partition_the_image_into_whole_pieces_and_colours_follow_them():
    data = make_dataset("tetrominoes")
    idx = np.arange(50)
    seg = data.segments(idx)
    x = data.get_batch(idx)["x"].numpy().transpose(0, 2, 3, 1).reshape(50, -1, 3)
    factors = data.object_factors(idx)
    for i in range(50):
        # every piece whole (4 blocks of 25 pixels), none overlapping, the rest background
        counts = np.bincount(seg[i], minlength=4)
        assert counts.tolist() == [35 * 35 - 3 * 4 * BLOCK**2, *[4 * BLOCK**2] * 3]
        assert (x[i][seg[i] == 0] == 0).all()
        for k in range(3):
            assert (x[i][seg[i] == k + 1] == COLOURS[factors[i, k, 1]]).all()


def test_an_index_outside_the_data_is_refused_in_one_line():
    with pytest.raises(IndexError, match="tetrominoes has 60000 examples; got index 60000"):
        make_dataset("tetrominoes").get_batch(np.array([60_000]))
    with pytest.raises(IndexError, match="got index -2$"):  # the index outside, not the largest
        make_dataset("tetrominoes").segments(np.array([5, -2]))


def test_a_piece_with_no_free_place_is_drawn_again():
    # index 33644's third piece had no free place, and rendering it never returned
    blocks = block_segments(scene_factors(33644)[None])[0]
    assert [int((blocks == k + 1).sum()) for k in range(3)] == [4, 4, 4]  # three whole pieces
    # a grid with one free 2x2 square: the O fits there, no I does
    o = SHAPES.index([(0, 0), (0, 1), (1, 0), (1, 1)])
    flat_i = SHAPES.index([(0, 0), (0, 1), (0, 2), (0, 3)])
    free = {(4, 4), (4, 5), (5, 4), (5, 5)}
    taken = {(r, c) for r in range(GRID) for c in range(GRID)} - free
    assert _fits_somewhere(SHAPES[o], taken) and not _fits_somewhere(SHAPES[flat_i], taken)
    assert not _fits_somewhere(SHAPES[o], taken | {(5, 5)})
