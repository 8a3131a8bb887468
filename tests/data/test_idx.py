"""IDX files (idx:), written byte by byte into tmp_path."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from loader_helpers import all_of, bad, idx_bytes, images, served, stored, write

from replab.data import make_dataset
from replab.data.idx import idx


@pytest.mark.parametrize("gz", [False, True])
def test_idx_single_file_with_sibling_labels(tmp_path, gz):
    x, y = images(7), np.array([0, 1, 2, 9, 3, 3, 1], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    img = write(tmp_path / f"train-images-idx3-ubyte{suffix}", idx_bytes(x), gz)
    write(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_bytes(y), gz)
    ds = make_dataset(f"idx:{img}")
    assert len(ds) == 7 and ds.info.shape == (1, 5, 4) and ds.info.num_classes == 10
    assert stored(ds).dtype == np.uint8
    np.testing.assert_array_equal(stored(ds)[:, 0], x)
    served(ds, x[:, None])
    np.testing.assert_array_equal(all_of(ds)[1], y)


def test_idx_labels_sibling_with_other_compression_and_no_labels(tmp_path):
    x = images(3)
    img = write(tmp_path / "emnist-letters-test-images-idx3-ubyte.gz", idx_bytes(x), gz=True)
    ds = idx(str(img))
    assert not ds.has_labels and "y" not in ds.get_batch(np.arange(3))
    write(tmp_path / "emnist-letters-test-labels-idx1-ubyte", idx_bytes(np.array([4, 5, 6])))
    np.testing.assert_array_equal(all_of(idx(str(img)))[1], [4, 5, 6])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_layout_concatenates_and_splits(tmp_path, gz):
    xtr, xte = images(6), images(4)
    ytr, yte = np.arange(6) % 3, np.array([2, 0, 1, 1])
    for prefix, x, y in (("train", xtr, ytr), ("t10k", xte, yte)):
        sfx = ".gz" if gz else ""
        write(tmp_path / f"{prefix}-images-idx3-ubyte{sfx}", idx_bytes(x), gz)
        write(tmp_path / f"{prefix}-labels-idx1-ubyte{sfx}", idx_bytes(y), gz)
    ds = make_dataset(f"idx:{tmp_path}")
    assert len(ds) == 10
    np.testing.assert_array_equal(stored(ds)[:, 0], np.concatenate([xtr, xte]))
    np.testing.assert_array_equal(all_of(ds)[1], np.concatenate([ytr, yte]))
    test, train = ds.split("test"), ds.split("train")
    np.testing.assert_array_equal(test.indices, np.arange(6, 10))
    np.testing.assert_array_equal(train.indices, np.arange(6))
    np.testing.assert_array_equal(all_of(test)[1], yte)
    served(test, xte[:, None])


def test_idx_errors(tmp_path):
    x = images(3)
    good = idx_bytes(x)
    bad(idx, tmp_path / "nope-images-idx3-ubyte", "nope-images-idx3-ubyte", "no such file")
    bad(idx, write(tmp_path / "empty-images-idx3-ubyte", b""), "empty file")
    bad(idx, write(tmp_path / "t1-images-idx3-ubyte", good[:-5]), "truncated", "60 data bytes")
    bad(idx, write(tmp_path / "t2-images-idx3-ubyte", good[:10]), "truncated IDX header")
    bad(idx, write(tmp_path / "x-images-idx3-ubyte", good + b"\0"), "1 bytes of extra data")
    gz = gzip.compress(good)
    bad(idx, write(tmp_path / "t3-images-idx3-ubyte.gz", gz[:-12]), "truncated gzip stream")
    corrupt = gz[:12] + bytes(b ^ 0xFF for b in gz[12:])
    bad(idx, write(tmp_path / "c-images-idx3-ubyte.gz", corrupt), "corrupt gzip data")
    wrong = b"\x12\x34" + good[2:]
    bad(idx, write(tmp_path / "m-images-idx3-ubyte", wrong), "wrong magic number 0x12340803")
    # A labels file passed as images, an int32 images file.
    labels = write(tmp_path / "l-labels-idx1-ubyte", idx_bytes(np.arange(3)))
    bad(idx, labels, "0x00000801", "a labels file?", "expected 0x00000803")
    int32 = struct.pack(">HBB", 0, 0x0C, 3) + good[4:]
    bad(idx, write(tmp_path / "i-images-idx3-ubyte", int32), "IDX int32", "expected 0x00000803")
    zero = idx_bytes(np.zeros((0, 5, 4), np.uint8))
    bad(idx, write(tmp_path / "z-images-idx3-ubyte", zero), "holds no images")


def test_idx_label_errors(tmp_path):
    img = write(tmp_path / "a-images-idx3-ubyte", idx_bytes(images(3)))
    lab = write(tmp_path / "a-labels-idx1-ubyte", idx_bytes(np.arange(4)))
    bad(idx, img, "a-labels-idx1-ubyte", "4 labels but a-images-idx3-ubyte holds 3 images")
    lab.unlink()
    lab.mkdir()  # a directory where the labels file should be
    bad(idx, img, "a-labels-idx1-ubyte", "is a directory, expected a file")
    img2 = write(tmp_path / "b-images-idx3-ubyte", idx_bytes(images(3)))
    write(tmp_path / "b-labels-idx1-ubyte", idx_bytes(images(3)))  # 3-D labels
    bad(idx, img2, "b-labels-idx1-ubyte", "an images file?")


def test_idx_folder_errors(tmp_path):
    bad(idx, tmp_path, "does not hold the MNIST layout", "t10k-images-idx3-ubyte[.gz]")
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images(2)))
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images(2, h=6)))
    bad(idx, tmp_path, "t10k-images-idx3-ubyte", "images are 6x4 but the train images are 5x4")
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images(2)))
    assert len(idx(str(tmp_path))) == 4  # no labels at all is fine
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.arange(2)))
    bad(idx, tmp_path, "labels for only one part", "t10k-labels-idx1-ubyte[.gz]")
