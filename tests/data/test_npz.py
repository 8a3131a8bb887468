"""NumPy files (npz:): .npz with keys, .npy, and the data sets' registration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loader_helpers import RNG, all_of, bad, served, stored, write

from replab.data import dataset_names, make_dataset
from replab.data.npz import npz


def test_npz_uint8_nhwc_with_labels(tmp_path):
    x = RNG.integers(0, 256, (6, 5, 4, 3), dtype=np.uint8)
    y = np.array([0, 1, 2, 2, 1, 0])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = make_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.info.shape == (3, 5, 4) and ds.info.num_classes == 3
    np.testing.assert_array_equal(stored(ds), x.transpose(0, 3, 1, 2))
    served(ds, x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(all_of(ds)[1], y)


def test_npz_float_nchw_alt_keys_and_class_names(tmp_path):
    x = RNG.random((4, 1, 6, 7)).astype(np.float64)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    np.savez_compressed(
        tmp_path / "d.npz", images=x, labels=np.array([[1], [0], [1], [0]], np.uint8),
        class_names=np.array(["cat", "dog", "eel"]),
    )  # fmt: skip
    ds = npz(str(tmp_path / "d.npz"))
    assert ds.info.shape == (1, 6, 7) and ds.class_names == ["cat", "dog", "eel"]
    xs, ys = all_of(ds)
    np.testing.assert_array_equal(xs, x.astype(np.float32))  # float images are served as-is
    assert ds.get_batch(np.arange(1))["x"].dtype == torch.float32
    np.testing.assert_array_equal(ys, [1, 0, 1, 0])


def test_npz_npy_and_3d_and_tie_break(tmp_path):
    x = RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.save(tmp_path / "a.npy", x)
    ds = npz(str(tmp_path / "a.npy"))
    assert not ds.has_labels and ds.info.shape == (1, 4, 5)
    np.testing.assert_array_equal(stored(ds)[:, 0], x)
    # [N, 4, 4, 3]: 4x4 RGB (square), not a 4-channel 4x3 image.
    x = RNG.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "b.npz", X=x, Y=np.array([0, 1]))
    ds = npz(str(tmp_path / "b.npz"))
    assert ds.info.shape == (3, 4, 4)
    np.testing.assert_array_equal(stored(ds), x.transpose(0, 3, 1, 2))


def test_npz_errors(tmp_path):
    def save(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    x = np.zeros((3, 4, 4), np.uint8)
    bad(npz, tmp_path / "missing.npz", "missing.npz", "no such file")
    bad(npz, tmp_path, "is a directory, expected a file")
    bad(npz, write(tmp_path / "e.npz", b""), "e.npz", "empty file")
    bad(npz, write(tmp_path / "g.npz", b"hello world"), "g.npz", "not a .npy or .npz")
    bad(npz, save("k.npz", data=x, y=np.arange(3)), "k.npz", "no image array", "found: data, y")
    bad(npz, save("r.npz", x=np.full((2, 3, 3), 2.5)), "must lie in [0, 1]", "[2.5, 2.5]")
    bad(npz, save("n.npz", x=np.full((2, 3, 3), -0.5)), "n.npz", "[-0.5, -0.5]")
    bad(npz, save("nan.npz", x=np.full((2, 3, 3), np.nan)), "NaN")
    bad(npz, save("i.npz", x=x.astype(np.int64)), "dtype int64")
    bad(npz, save("o.npz", x=np.array([x[0], "a"], dtype=object)), "o.npz", "object array")
    np.save(tmp_path / "o.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    bad(npz, tmp_path / "o.npy", "o.npy", "object array")
    bad(npz, save("l.npz", x=x, y=np.arange(4)), "l.npz", "3 images but 4 labels")
    bad(npz, save("m.npz", x=x, y=np.array([0, -1, 2])), "out of range: found -1..2")
    bad(npz, save("f.npz", x=x, y=np.array([0.0, 1.0, 2.0])), "dtype float64, expected integers")
    names = np.array(["a", "b"])
    bad(npz, save("c.npz", x=x, y=np.arange(3), class_names=names), "found 0..2, expected 0..1")
    bad(npz, save("s.npz", x=np.zeros((3, 4))), "has shape [3, 4]")
    bad(npz, save("a.npz", x=np.zeros((2, 3, 3, 3))), "cannot tell")
    bad(npz, save("h.npz", x=np.zeros((2, 5, 6, 7))), "no channel axis")
    bad(npz, save("z.npz", x=np.zeros((0, 3, 3))), "is empty")
    full = save("t.npz", x=RNG.integers(0, 256, (50, 8, 8), dtype=np.uint8)).read_bytes()
    bad(npz, write(tmp_path / "t.npz", full[: len(full) // 2]), "t.npz", "corrupt or truncated")
    np.save(tmp_path / "t.npy", RNG.integers(0, 256, (50, 8, 8), dtype=np.uint8))
    full = (tmp_path / "t.npy").read_bytes()
    bad(npz, write(tmp_path / "t.npy", full[:-100]), "t.npy", "corrupt or truncated")


def test_registered_and_need_a_path():
    assert {"idx", "cifar", "folder", "npz"} <= set(dataset_names())
    with pytest.raises(ValueError, match="needs a path"):
        make_dataset("npz:")
