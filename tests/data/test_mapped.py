"""Large arrays without a decoded copy: npz members mapped in place or through the cache."""

import zipfile

import numpy as np
import pytest

from replab.data.base import DataError
from replab.data.mapped import npz_member, raw_block, read_rows


def test_a_stored_member_is_mapped_where_it_lies(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    np.savez(tmp_path / "s.npz", a=a, b=np.ones(3))
    got = npz_member(tmp_path / "s.npz", "a")
    assert isinstance(got, np.memmap) and str(got.filename) == str((tmp_path / "s.npz").resolve())
    assert np.array_equal(got, a)
    assert not (tmp_path / "cache").exists()  # no copy made


def test_a_compressed_member_is_decompressed_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    a = np.random.default_rng(0).integers(0, 255, (50, 8, 8), dtype=np.uint8)
    np.savez_compressed(tmp_path / "c.npz", a=a)
    first = npz_member(tmp_path / "c.npz", "a")
    cached = list((tmp_path / "cache" / "arrays").glob("*.npy"))
    assert len(cached) == 1 and isinstance(first, np.memmap) and np.array_equal(first, a)
    mtime = cached[0].stat().st_mtime_ns
    again = npz_member(tmp_path / "c.npz", "a")
    assert np.array_equal(again, a) and cached[0].stat().st_mtime_ns == mtime  # not rewritten
    monkeypatch.setenv("REPLAB_CACHE", "off")
    assert np.array_equal(npz_member(tmp_path / "c.npz", "a"), a)  # in memory, no cache


def test_damaged_members_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache"))
    np.savez(tmp_path / "o.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataError, match="'a' is an object array"):
        npz_member(tmp_path / "o.npz", "a")
    with pytest.raises(DataError, match="has no array 'z' \\(it holds: a\\)"):
        npz_member(tmp_path / "o.npz", "z")
    big = np.arange(10000, dtype=np.int64)
    np.savez(tmp_path / "t.npz", a=big)
    raw = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="t.npz: "):
        npz_member(tmp_path / "t.npz", "a")
    # compressed, with one byte of the data flipped: the member's CRC catches it
    np.savez_compressed(tmp_path / "f.npz", a=big)
    raw = bytearray((tmp_path / "f.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "f.npz") as z:
        info = z.getinfo("a.npy")
    raw[info.header_offset + 30 + len("a.npy") + info.compress_size // 2] ^= 0xFF
    (tmp_path / "f.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt or truncated"):
        npz_member(tmp_path / "f.npz", "a")
    assert not list((tmp_path / "cache" / "arrays").glob("*.npy"))  # nothing half-written


def test_raw_blocks_hold_exactly_what_the_header_promises(tmp_path):
    (tmp_path / "r.bin").write_bytes(bytes(range(16)))
    assert raw_block(tmp_path / "r.bin", 4, np.uint8, (3, 4))[2, 3] == 15
    with pytest.raises(DataError, match="truncated: the header promises 20 bytes"):
        raw_block(tmp_path / "r.bin", 4, np.uint8, (4, 4))
    with pytest.raises(DataError, match="4 bytes of extra data"):
        raw_block(tmp_path / "r.bin", 4, np.uint8, (2, 4))


def test_rows_are_read_once_each_in_any_order():
    a = np.arange(20).reshape(10, 2)
    assert read_rows(a, np.array([7, 2, 7, 0])).tolist() == [[14, 15], [4, 5], [14, 15], [0, 1]]
