"""ARI per image equals scikit-learn's adjusted_rand_score; foreground ARI is ARI on the
non-background pixels; the colour baseline separates flat colours exactly, random masks score
near zero."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from replab.eval.segmentation import (
    adjusted_rand_index,
    colour_segments,
    foreground_ari,
    random_segments,
)


def test_ari_equals_scikit_learns_per_image():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, (12, 50))
    pred = rng.integers(0, 6, (12, 50))
    pred[3] = true[3]  # identical partitions
    pred[4] = (true[4] + 7) * 3  # the same partition under other names
    true[5], pred[5] = 2, 9  # one segment each
    true[6] = 0  # one true segment, many predicted
    pred[7] = np.where(true[7] < 2, 0, 1)  # merged segments
    got = adjusted_rand_index(true, pred)
    want = [adjusted_rand_score(t, p) for t, p in zip(true, pred, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got[3] == got[4] == got[5] == 1.0


def test_foreground_ari_counts_only_the_objects_pixels():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 4, (8, 64))
    pred = rng.integers(0, 3, (8, 64))
    pred[2] = np.where(true[2] == 0, 5, true[2])  # right on the objects, wrong on background
    got = foreground_ari(true, pred)
    want = [adjusted_rand_score(t[t != 0], p[t != 0]) for t, p in zip(true, pred, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got[2] == 1.0


def test_the_colour_baseline_separates_flat_colours_and_random_masks_do_not():
    img = np.zeros((1, 3, 8, 8))
    img[0, 0, :4, :4] = 1.0  # a red square
    img[0, 2, 5:, 5:] = 0.5  # a blue one
    true = np.zeros((8, 8), dtype=np.int64)
    true[:4, :4], true[5:, 5:] = 1, 2
    segments = colour_segments(img, k=3)
    assert adjusted_rand_index(true.reshape(1, -1), segments)[0] == pytest.approx(1.0)
    chance = adjusted_rand_index(np.repeat(true.reshape(1, -1), 200, 0),
                                 random_segments(200, 64, 3, seed=0))  # fmt: skip
    assert abs(chance.mean()) < 0.02


@pytest.mark.parametrize(
    "true, pred, message",
    [
        (np.zeros((2, 4), np.int64), np.zeros((2, 5), np.int64), "differ in shape"),
        (np.zeros((2, 4)), np.zeros((2, 4), np.int64), "integer labels"),
        (np.zeros(4, np.int64), np.zeros(4, np.int64), "[images, pixels]"),
    ],
)
def test_bad_labels_are_refused_in_one_line(true, pred, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        adjusted_rand_index(true, pred)
