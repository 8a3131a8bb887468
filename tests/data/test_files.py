"""File loaders: idx:, cifar:, folder:, npz:. Fixtures are tiny files written into tmp_path."""

from __future__ import annotations

import gzip
import io
import pickle
import struct

import numpy as np
import pytest
import torch

from replab.data import DataError, make_dataset
from replab.data.files import cifar, folder, idx, npz

# ----------------------------------------------------------------------------------------------
# helpers


def all_of(ds):
    """x (float, as served) and y of a whole data set."""
    batch = ds.get_batch(np.arange(len(ds)))
    return batch["x"].numpy(), (batch["y"].numpy() if "y" in batch else None)


def stored(ds):
    """The images as the data set holds them (uint8 for uint8 sources): exact comparisons."""
    return ds.x.numpy()


def served(ds, expected_uint8):
    """get_batch serves the stored uint8 images scaled by 1/255, as float32."""
    xs = all_of(ds)[0]
    assert xs.dtype == np.float32
    np.testing.assert_allclose(xs, expected_uint8.astype(np.float64) / 255.0, rtol=1e-6, atol=0)


def bad(fn, arg, *fragments):
    """Call a loader expecting a one-line DataError that contains every fragment."""
    with pytest.raises(DataError) as info:
        fn(str(arg))
    msg = str(info.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


RNG = np.random.default_rng(0)


def images(n, h=5, w=4):
    return RNG.integers(0, 256, size=(n, h, w), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# idx:


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


# ----------------------------------------------------------------------------------------------
# cifar:


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


# ----------------------------------------------------------------------------------------------
# folder:


def save_png(path, arr, mode=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return arr


def test_folder_rgb_and_grey_mixed(tmp_path):
    rgb = [RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8) for _ in range(3)]
    grey = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    save_png(tmp_path / "zebra" / "b.png", rgb[0])
    save_png(tmp_path / "zebra" / "a.png", rgb[1])
    save_png(tmp_path / "ant" / "x.png", rgb[2])
    save_png(tmp_path / "ant" / "y.png", grey)
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "README").write_text("top-level files are ignored")
    ds = make_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ["ant", "zebra"]
    assert ds.info.shape == (3, 3, 4) and ds.info.num_classes == 2
    # Order: classes sorted, files sorted within a class; grey -> three equal channels.
    expected = np.stack([rgb[2], np.repeat(grey[..., None], 3, axis=2), rgb[1], rgb[0]])
    np.testing.assert_array_equal(stored(ds), expected.transpose(0, 3, 1, 2))
    served(ds, expected.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(all_of(ds)[1], [0, 0, 1, 1])


def test_folder_all_grey_is_one_channel(tmp_path):
    a = save_png(tmp_path / "0" / "a.png", RNG.integers(0, 256, (5, 2), dtype=np.uint8))
    b = save_png(tmp_path / "1" / "b.png", RNG.integers(0, 256, (5, 2), dtype=np.uint8))
    ds = folder(str(tmp_path))
    assert ds.info.shape == (1, 5, 2)
    np.testing.assert_array_equal(stored(ds)[:, 0], np.stack([a, b]))
    np.testing.assert_array_equal(all_of(ds)[1], [0, 1])


def test_folder_errors(tmp_path):
    bad(folder, tmp_path / "none", "none", "no such file")
    f = write(tmp_path / "file.png", b"x")
    bad(folder, f, "file.png", "is a file, expected a folder")
    root = tmp_path / "root"
    root.mkdir()
    bad(folder, root, "root", "no class sub-folders")
    save_png(root / "loose.png", np.zeros((2, 2), np.uint8))
    bad(folder, root, "no class sub-folders", "holds 1 images directly")
    (root / "cat").mkdir()
    (root / "cat" / "readme.txt").write_text("x")
    bad(folder, root, "cat", "class folder holds no images")
    save_png(root / "cat" / "1.png", np.zeros((4, 6, 3), np.uint8))
    save_png(root / "dog" / "1.png", np.zeros((4, 6, 3), np.uint8))
    save_png(root / "dog" / "2.png", np.zeros((5, 6, 3), np.uint8))
    msg = bad(folder, root, "dog/2.png", "6x5", "6x4", "cat/1.png", "same size")
    assert msg.startswith(str(root / "dog" / "2.png"))
    (root / "dog" / "2.png").write_bytes(b"garbage, not a png")
    bad(folder, root, "dog/2.png", "unreadable image")
    png = (root / "dog" / "1.png").read_bytes()
    (root / "dog" / "2.png").write_bytes(png[: len(png) // 2])
    bad(folder, root, "dog/2.png", "unreadable image")
    (root / "dog" / "2.png").write_bytes(b"")
    bad(folder, root, "dog/2.png", "unreadable image")
    save_png(root / "dog" / "2.png", np.zeros((4, 6), np.uint16) + 1000)
    bad(folder, root, "dog/2.png", "mode I;16", "not supported")


# ----------------------------------------------------------------------------------------------
# npz:


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
    from replab.registry import dataset_names

    assert {"idx", "cifar", "folder", "npz"} <= set(dataset_names())
    with pytest.raises(ValueError, match="needs a path"):
        make_dataset("npz:")
