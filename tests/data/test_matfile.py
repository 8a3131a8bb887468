"""The MATLAB v5 reader against files scipy writes and one built by hand (big-endian)."""

import struct

import numpy as np
import pytest
from scipy.io import savemat

from replab.data.base import DataError
from replab.data.matfile import read_mat_array

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("compressed", [False, True])
def test_arrays_scipy_writes_read_back_exactly(tmp_path, compressed):
    arrays = {
        "im": RNG.integers(0, 256, (5, 4, 3, 2), dtype=np.uint8),
        "weights": RNG.standard_normal((3, 7)),
        "counts": np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
        "tiny": np.array([[3.5]]),
    }
    path = tmp_path / "m.mat"
    # a string and a cell before the arrays: elements the reader must step over
    savemat(path, {"label": "car", "cell": np.array([1, "a"], dtype=object), **arrays},
            do_compression=compressed)  # fmt: skip
    for name, want in arrays.items():
        got = read_mat_array(path, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name


def _element(kind: int, data: bytes) -> bytes:
    pad = b"\0" * (-len(data) % 8)
    return struct.pack(">II", kind, len(data)) + data + pad


def test_a_big_endian_file_built_by_hand(tmp_path):
    """The layout from the format's specification, written byte by byte: a 2x3 int16 matrix
    named 'a' (name in the small element form), column-major."""
    want = np.array([[1, -2, 3], [400, 5, -600]], dtype=np.int16)
    flags = _element(6, struct.pack(">II", 10, 0))  # mxINT16_CLASS
    dims = _element(5, struct.pack(">ii", 2, 3))
    name = struct.pack(">HH", 1, 1) + b"a\0\0\0"  # small element: count 1, type miINT8
    real = _element(3, want.astype(">i2").tobytes(order="F"))
    header = b"MATLAB 5.0 MAT-file, written by hand".ljust(116) + b"\0" * 8 + b"\x01\x00MI"
    path = tmp_path / "big.mat"
    path.write_bytes(header + _element(14, flags + dims + name + real))
    got = read_mat_array(path, "a")
    assert got.dtype == np.int16 and np.array_equal(got, want)


@pytest.mark.parametrize("compressed", [False, True])
def test_every_cut_is_refused_with_one_line(tmp_path, compressed):
    path = tmp_path / "m.mat"
    savemat(path, {"im": RNG.integers(0, 256, (6, 5), dtype=np.uint8)}, do_compression=compressed)
    whole = path.read_bytes()
    for keep in range(len(whole)):
        path.write_bytes(whole[:keep])
        with pytest.raises(DataError) as caught:
            read_mat_array(path, "im")
        assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_what_is_not_there_is_named(tmp_path):
    path = tmp_path / "m.mat"
    savemat(path, {"weights": np.eye(2), "label": "x"})
    with pytest.raises(DataError, match=r"no numeric array 'im' \(numeric arrays: weights\)"):
        read_mat_array(path, "im")
    hdf5 = tmp_path / "v73.mat"
    hdf5.write_bytes(b"MATLAB 7.3 MAT-file".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(DataError, match="v7.3"):
        read_mat_array(hdf5, "im")
    text = tmp_path / "t.mat"
    text.write_text("not matlab\n" * 20)
    with pytest.raises(DataError, match="not a MATLAB v5 file"):
        read_mat_array(text, "im")


def test_the_flip_that_crashes_scipy_is_refused(tmp_path):
    """Bit 1 of byte 192 (the real part's element type) flipped in a Cars3D-shaped file: scipy
    1.17's loadmat dies of a segmentation fault on it; this reader names the damage."""
    path = tmp_path / "car.mat"
    savemat(path, {"im": np.zeros((128, 128, 3, 24, 4), dtype=np.uint8)})
    damaged = bytearray(path.read_bytes())
    damaged[192] ^= 2
    path.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="damaged MATLAB file: a matrix's data has element type 0"):
        read_mat_array(path, "im")
