"""One numeric array from a MATLAB level-5 file (``.mat``, v5 to v7, compressed or not).

Why not ``scipy.io.loadmat``: on a damaged file it can take the whole process down with a bus
error instead of raising (found by tests/data/test_fuzzed_files.py), and a loader must refuse a
bad file with one line. This reader knows only what the release files need, a plain numeric
matrix found by name, and checks every length against the bytes that are there.

The format (MathWorks, "MAT-File Format", level 5): a 128-byte header (text, subsystem offset,
version 0x0100, endian mark ``IM`` or ``MI``), then data elements, each an 8-byte tag (type,
byte count; or the 4-byte small form, count in the high half) and its data padded to 8 bytes.
A ``miCOMPRESSED`` element holds one zlib-deflated element; a ``miMATRIX`` holds array flags
(class in the low byte), dimensions, a name and the real part, in column-major order.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from replab.data.readers import err

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
# element types of numeric data, by their code
_ELEMENT_DTYPES = {
    1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8",
}  # fmt: skip
# mx classes of numeric arrays: the dtype MATLAB means (the stored element type may be smaller)
_CLASS_DTYPES = {
    6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8",
}  # fmt: skip
_COMPLEX_FLAG = 0x0800
_HEADER_BYTES = 128
_INFLATE_LIMIT = 2**31  # bytes one compressed element may inflate to (a release file's is 4.7 MB)


class _Damaged(Exception):
    """A length or field that does not fit the bytes present (turned into one DataError)."""


def _elements(buf: memoryview, order: str):
    """(type, data) of each data element in ``buf``; raises _Damaged when a tag overruns."""
    at = 0
    while at < len(buf):
        if len(buf) - at < 8:
            raise _Damaged(f"a data element's tag is cut at byte {at}")
        first, second = np.frombuffer(buf[at : at + 8], dtype=f"{order}u4")
        if first >> 16:  # small element: type and count in 4 bytes, data in the next 4
            kind, count = int(first & 0xFFFF), int(first >> 16)
            if count > 4:
                raise _Damaged(f"a small data element claims {count} bytes")
            yield kind, buf[at + 4 : at + 4 + count]
            at += 8
            continue
        kind, count = int(first), int(second)
        start, end = at + 8, at + 8 + count
        if end > len(buf):
            raise _Damaged(f"a data element claims {count} bytes where {len(buf) - start} remain")
        yield kind, buf[start:end]
        at = end if kind == MI_COMPRESSED else start + (count + 7) // 8 * 8


def _matrix(body: memoryview, order: str) -> tuple[str, np.ndarray] | None:
    """(name, array) of a miMATRIX element's contents, or None when it is not a numeric array."""
    parts = _elements(body, order)
    try:
        flags_kind, flags = next(parts)
        dims_kind, dims = next(parts)
        name_kind, name = next(parts)
    except StopIteration:
        raise _Damaged("a matrix lacks its flags, dimensions or name") from None
    if flags_kind != MI_UINT32 or len(flags) != 8 or dims_kind != MI_INT32 or len(dims) % 4:
        raise _Damaged("a matrix's flags or dimensions are malformed")
    flag_word = int(np.frombuffer(flags[:4], dtype=f"{order}u4")[0])
    cls = flag_word & 0xFF
    if cls not in _CLASS_DTYPES or flag_word & _COMPLEX_FLAG:
        return None  # a cell, struct, char, sparse or complex array: not one we read
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=f"{order}i4"))
    if any(d < 0 for d in shape):
        raise _Damaged(f"a matrix has negative dimensions {list(shape)}")
    if name_kind != MI_INT8:
        raise _Damaged("a matrix's name is malformed")
    try:
        real_kind, real = next(parts)
    except StopIteration:
        raise _Damaged("a matrix lacks its data") from None
    if real_kind not in _ELEMENT_DTYPES:
        raise _Damaged(f"a matrix's data has element type {real_kind}")
    stored = np.dtype(_ELEMENT_DTYPES[real_kind]).newbyteorder(order)
    count = int(np.prod(shape, dtype=np.int64))
    if len(real) != count * stored.itemsize:
        raise _Damaged(
            f"a matrix of {list(shape)} holds {len(real)} bytes of {stored.name}, "
            f"not {count * stored.itemsize}"
        )
    values = np.frombuffer(real, dtype=stored).astype(_CLASS_DTYPES[cls])
    return bytes(name).decode("latin-1"), values.reshape(shape, order="F")


def _inflated(data: memoryview, order: str) -> tuple[int, memoryview]:
    """The one element a miCOMPRESSED element holds."""
    inflater = zlib.decompressobj()
    try:
        inner = memoryview(inflater.decompress(data, _INFLATE_LIMIT))
    except zlib.error as e:
        raise _Damaged(f"a compressed element does not inflate ({e})") from None
    if inflater.unconsumed_tail:
        raise _Damaged(f"a compressed element inflates past {_INFLATE_LIMIT} bytes")
    if not inflater.eof:
        raise _Damaged("a compressed element is cut short")
    held = list(_elements(inner, order))
    if len(held) != 1:
        raise _Damaged(f"a compressed element holds {len(held)} elements, not one")
    return held[0]


def read_mat_array(path: Path, name: str) -> np.ndarray:
    """The numeric array ``name`` of the MATLAB v5 file at ``path``, in MATLAB's shape and dtype;
    a DataError naming the file when it is not such a file, is damaged or lacks the array."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise err(path, f"unreadable ({e.strerror or e})") from None
    if len(raw) < _HEADER_BYTES:
        raise err(path, f"not a MATLAB v5 file ({len(raw)} bytes, shorter than its header)")
    mark = raw[126:128]
    if mark not in (b"IM", b"MI"):
        hdf5 = raw[:8] == b"\x89HDF\r\n\x1a\n" or raw[512:520] == b"\x89HDF\r\n\x1a\n"
        what = "a MATLAB v7.3 (HDF5) file, not read here" if hdf5 else "not a MATLAB v5 file"
        raise err(path, f"{what} (no endian mark in its header)")
    order = "<" if mark == b"IM" else ">"
    found = []
    try:
        for kind, data in _elements(memoryview(raw)[_HEADER_BYTES:], order):
            if kind == MI_COMPRESSED:
                kind, data = _inflated(data, order)
            if kind != MI_MATRIX:
                continue
            matrix = _matrix(data, order)
            if matrix is not None:
                found.append(matrix[0])
                if matrix[0] == name:
                    return matrix[1]
    except _Damaged as e:
        raise err(path, f"damaged MATLAB file: {e}") from None
    held = ", ".join(found) or "none"
    raise err(path, f"has no numeric array {name!r} (numeric arrays: {held})")
