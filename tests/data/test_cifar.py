"""CIFAR python batches (cifar:), including Python 2 pickles and forbidden globals."""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np
import pytest
from loader_helpers import RNG, all_of, bad, served, stored, write

from replab.data import make_dataset
from replab.data.cifar import cifar


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strings, as the original CIFAR batches are stored."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[str] = save_py2str
    dispatch[bytes] = save_py2str


def py2_dumps(obj) -> bytes:
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def cifar_rows(n):
    return RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root, sizes=(2, 1, 2, 1, 2, 3), dumps=pickle.dumps, str_keys=False, meta=True):
    root.mkdir(exist_ok=True)
    key = (lambda s: s) if str_keys else (lambda s: s.encode())
    rows, labels = [], []
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, n in zip(names, sizes, strict=True):
        data, y = cifar_rows(n), [int(v) for v in RNG.integers(0, 10, size=n)]
        rows.append(data)
        labels.extend(y)
        batch = {key("batch_label"): key(name), key("data"): data, key("labels"): y}
        (root / name).write_bytes(dumps(batch))
    if meta:
        classes = [key(f"class{i}") for i in range(10)]
        (root / "batches.meta").write_bytes(dumps({key("label_names"): classes}))
    return np.concatenate(rows), np.array(labels)


def check_pixels(ds, rows):
    # Row layout: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane.
    expected = np.stack(
        [rows[:, c * 1024 : (c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)], axis=1
    )
    np.testing.assert_array_equal(stored(ds), expected)
    assert stored(ds)[0, 1, 2, 3] == rows[0, 1024 + 2 * 32 + 3]
    served(ds, expected)


@pytest.mark.parametrize(
    "dumps,str_keys",
    [(pickle.dumps, False), (pickle.dumps, True), (py2_dumps, False),
     (lambda o: pickle.dumps(o, protocol=5), False),
     (lambda o: pickle.dumps(o, protocol=2), True)],
)  # fmt: skip
def test_cifar10(tmp_path, dumps, str_keys):
    rows, labels = write_cifar10(tmp_path / "cifar-10-batches-py", dumps=dumps, str_keys=str_keys)
    ds = make_dataset(f"cifar:{tmp_path / 'cifar-10-batches-py'}")
    assert len(ds) == 11 and ds.info.shape == (3, 32, 32)
    assert ds.class_names == [f"class{i}" for i in range(10)]
    check_pixels(ds, rows)
    np.testing.assert_array_equal(all_of(ds)[1], labels)
    np.testing.assert_array_equal(ds.split("test").indices, [8, 9, 10])
    np.testing.assert_array_equal(ds.split("train").indices, np.arange(8))


def test_cifar10_parent_folder_and_no_meta(tmp_path):
    rows, labels = write_cifar10(tmp_path / "cifar-10-batches-py", meta=False)
    ds = cifar(str(tmp_path))
    assert ds.class_names is None
    np.testing.assert_array_equal(all_of(ds)[1], labels)


def test_cifar100(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    tr, te = cifar_rows(3), cifar_rows(2)
    ytr, yte = [0, 99, 42], [7, 8]
    for name, data, y in (("train", tr, ytr), ("test", te, yte)):
        batch = {b"data": data, b"fine_labels": y, b"coarse_labels": [0] * len(y)}
        (root / name).write_bytes(py2_dumps(batch))
    names = [f"fine{i}".encode() for i in range(100)]
    (root / "meta").write_bytes(py2_dumps({b"fine_label_names": names}))
    ds = cifar(str(root))
    check_pixels(ds, np.concatenate([tr, te]))
    np.testing.assert_array_equal(all_of(ds)[1], ytr + yte)
    assert ds.class_names[99] == "fine99" and ds.info.num_classes == 100
    np.testing.assert_array_equal(ds.split("test").indices, [3, 4])


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file if called


def test_cifar_refuses_forbidden_globals(tmp_path):
    root = tmp_path / "c"
    write_cifar10(root)
    marker = tmp_path / "pwned"
    (root / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil(marker), b"labels": []}))
    bad(cifar, root, "data_batch_3", "io.open", "refused")
    assert not marker.exists()
    import os

    class Sys:
        def __reduce__(self):
            return (os.system, ("true",))

    (root / "data_batch_3").write_bytes(pickle.dumps(Sys()))
    bad(cifar, root, "data_batch_3", "system", "refused")
    from collections import OrderedDict

    (root / "batches.meta").write_bytes(pickle.dumps(OrderedDict(label_names=[b"a"])))
    bad(cifar, root, "batches.meta", "collections.OrderedDict", "refused")


def test_cifar_batch_errors(tmp_path):
    root = tmp_path / "c"
    write_cifar10(root)
    target = root / "data_batch_2"
    good = target.read_bytes()

    def batch(**kw):
        target.write_bytes(pickle.dumps({k.encode(): v for k, v in kw.items()}))

    batch(labels=[1])
    bad(cifar, root, "data_batch_2", "no 'data' key", "b'labels'")
    batch(data=cifar_rows(1))
    bad(cifar, root, "data_batch_2", "no 'labels' key")
    batch(data=np.zeros((2, 3000), np.uint8), labels=[1, 2])
    bad(cifar, root, "data_batch_2", "shape [2, 3000]", "expected [N, 3072]")
    batch(data=np.zeros(3072, np.uint8), labels=[1])
    bad(cifar, root, "shape [3072]")
    batch(data=cifar_rows(2), labels=[1])
    bad(cifar, root, "data_batch_2", "2 images but 1 labels")
    batch(data=cifar_rows(2), labels=[1, 10])
    bad(cifar, root, "data_batch_2", "out of range: found 1..10, expected 0..9")
    batch(data=cifar_rows(2), labels=[-1, 0])
    bad(cifar, root, "out of range")
    batch(data=cifar_rows(2), labels=[0.5, 1.0])
    bad(cifar, root, "data_batch_2", "not a list of integers")
    batch(data=np.full((1, 3072), 300, np.int64), labels=[0])
    bad(cifar, root, "dtype int64, expected uint8")
    batch(data=np.array([[1] * 3072], dtype=object), labels=[0])
    bad(cifar, root, "data_batch_2", "object array")
    batch(data=cifar_rows(1).tolist(), labels=[0])
    bad(cifar, root, "'data' is a list")
    target.write_bytes(pickle.dumps([1, 2, 3]))
    bad(cifar, root, "data_batch_2", "holds a list, expected a dict")
    target.write_bytes(good[: len(good) // 2])
    bad(cifar, root, "data_batch_2", "truncated pickle")
    target.write_bytes(b"")
    bad(cifar, root, "data_batch_2", "empty file")
    target.write_bytes(b"this is not a pickle at all")
    bad(cifar, root, "data_batch_2", "not a readable pickle")
    target.unlink()
    target.mkdir()
    bad(cifar, root, "data_batch_2", "is a directory, expected a file")
    target.rmdir()
    bad(cifar, root, "incomplete CIFAR-10 folder", "data_batch_2")


def test_cifar_layout_errors(tmp_path):
    bad(cifar, tmp_path / "missing", "missing", "no such file or directory")
    bad(cifar, tmp_path, "no CIFAR batches", "data_batch_1")
    f = write(tmp_path / "cifar-10-python.tar.gz", b"x")
    bad(cifar, f, "cifar-10-python.tar.gz", "is a file, expected a folder")
    (tmp_path / "train").write_bytes(b"x")
    bad(cifar, tmp_path, "incomplete CIFAR-100 folder", "test")
    root = tmp_path / "c"
    write_cifar10(root)
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": "abc"}))
    bad(cifar, root, "batches.meta", "not a list of strings")
    (root / "batches.meta").write_bytes(pickle.dumps({b"names": []}))
    bad(cifar, root, "batches.meta", "no 'label_names' key")
