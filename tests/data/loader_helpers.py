"""What the file loaders' tests share: reading a data set back, and expecting a one-line error."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from replab.data import DataError


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
