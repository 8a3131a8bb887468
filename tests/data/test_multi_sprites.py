"""Multi-dSprites: sprites rendered by the sprites renderer, painted in order (later over
earlier), masks that say which sprite shows at each pixel, colours that follow the masks."""

import numpy as np
import pytest

from replab.data import ObjectScenes, make_dataset
from replab.data.multi_sprites import scene
from replab.data.sprites import render_np


def test_masks_are_the_rendered_sprites_painted_in_order():
    data = make_dataset("multi_sprites")
    idx = np.arange(40)
    seg = data.segments(idx).reshape(40, 64, 64)
    x = data.get_batch(idx)["x"].numpy()
    factors = data.object_factors(idx)
    counts = set()
    for i in idx:
        grey, objects = scene(i)
        present = objects[objects[:, 0] >= 0]
        counts.add(len(present))
        want = np.zeros((64, 64), dtype=np.int64)
        for k, f in enumerate(present):  # by hand: each sprite's own mask, over the earlier ones
            want[render_np(f[None, :5])[0, 0] > 0.5] = k + 1
        np.testing.assert_array_equal(seg[i], want)
        assert np.allclose(x[i][:, want == 0], grey / 255)
        for k, f in enumerate(present):
            assert np.allclose(x[i][:, want == k + 1], (f[5:] / 255)[:, None])
            assert factors[i, k, -1] == int((want == k + 1).any())
        assert (factors[i, len(present) :] == -1).all()
    assert counts == {2, 3, 4, 5}


def test_images_are_functions_of_the_index():
    data = make_dataset("multi_sprites")
    assert isinstance(data, ObjectScenes) and not data.has_labels and len(data) == 60_000
    idx = np.array([3, 59_999, 3])
    a = data.get_batch(idx)["x"]
    b = make_dataset("multi_sprites").get_batch(idx[:2])["x"]
    assert a.shape == (3, 3, 64, 64) and bool((a[:2] == b).all()) and bool((a[0] == a[2]).all())


def test_an_index_outside_the_data_is_refused_in_one_line():
    with pytest.raises(IndexError, match="multi_sprites has 60000 examples; got index -1"):
        make_dataset("multi_sprites").segments(np.array([0, -1]))
