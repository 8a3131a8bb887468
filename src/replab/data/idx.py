"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST ...), gzip or raw: ``idx:PATH``.

PATH is an images file (its labels file is found beside it) or a folder in the MNIST layout
(``train-*`` and ``t10k-*``), whose ``t10k`` part is the test split. The header is checked
against the bytes that follow: a truncated file is refused, as is one with extra data.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from replab.data.base import ArrayDataset
from replab.data.readers import err, existing, read_bytes, shape_str, short
from replab.registry import register_dataset

# IDX type code -> (numpy dtype, name). Only uint8 is accepted; the others give a clear message.
_IDX_TYPES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx(path: Path, ndim: int, what: str) -> np.ndarray:
    """The uint8 array of an IDX file (gzip or raw), with its header checked against the bytes."""
    raw = read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise err(path, "truncated gzip stream (the compressed data ends early)") from None
        except (OSError, zlib.error) as exc:
            raise err(path, f"corrupt gzip data ({short(exc)})") from None
        if not raw:
            raise err(path, "empty after gzip decompression")
    expected = 0x0800 | ndim
    want = f"expected 0x{expected:08X} (IDX uint8, {ndim} dim{'s' * (ndim > 1)}: {what})"
    if len(raw) < 4:
        raise err(path, f"only {len(raw)} bytes, too short for an IDX header; {want}")
    (magic,) = struct.unpack(">I", raw[:4])
    code, dims = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_TYPES:
        raise err(path, f"wrong magic number 0x{magic:08X}, not an IDX file; {want}")
    if code != 0x08 or dims != ndim:
        hint = " - a labels file?" if (code, dims) == (0x08, 1) else ""
        hint = " - an images file?" if (code, dims) == (0x08, 3) else hint
        got = f"IDX {_IDX_TYPES[code]}, {dims} dim{'s' * (dims != 1)}{hint}"
        raise err(path, f"wrong magic number 0x{magic:08X} ({got}); {want}")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise err(path, f"truncated IDX header: {len(raw)} bytes, the header needs {header}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    declared = int(np.prod(shape, dtype=np.int64))
    have = len(raw) - header
    if have < declared:
        raise err(
            path,
            f"truncated: the header declares {shape_str(shape)} = {declared} data bytes "
            f"but only {have} follow",
        )
    if have > declared:
        raise err(
            path,
            f"{have - declared} bytes of extra data after the {declared} that the header "
            f"declares ({shape_str(shape)})",
        )
    if shape[0] == 0:
        raise err(path, f"holds no {what} (the header declares 0)")
    if 0 in shape:
        raise err(path, f"declares an empty shape {shape_str(shape)}")
    # Copy: frombuffer over bytes is read-only, which torch warns about.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


_IMAGES_NAME = re.compile(r"images([-.])idx3-ubyte")


def _idx_labels_sibling(images: Path) -> Path | None:
    """``*-labels-idx1-ubyte[.gz]`` next to ``*-images-idx3-ubyte[.gz]``, when it exists."""
    matches = list(_IMAGES_NAME.finditer(images.name))
    if not matches:
        return None
    m = matches[-1]
    base = f"{images.name[: m.start()]}labels{m.group(1)}idx1-ubyte"
    suffixes = (".gz", "") if images.name.endswith(".gz") else ("", ".gz")
    for suffix in suffixes:
        candidate = images.with_name(base + suffix)
        if candidate.exists():
            return candidate
    return None


def _idx_pair(images_path: Path, labels_path: Path | None):
    x = _read_idx(images_path, 3, "images")
    y = None
    if labels_path is not None:
        y = _read_idx(labels_path, 1, "labels")
        if len(y) != len(x):
            raise err(
                labels_path,
                f"{len(y)} labels but {images_path.name} holds {len(x)} images",
            )
    return x, y


def _idx_find(folder: Path, prefix: str, kind: str) -> Path | None:
    dims = 3 if kind == "images" else 1
    for sep in "-.":
        for suffix in ("", ".gz"):
            candidate = folder / f"{prefix}-{kind}{sep}idx{dims}-ubyte{suffix}"
            if candidate.exists():
                return candidate
    return None


@register_dataset("idx", takes_argument=True)
def idx(arg: str) -> ArrayDataset:
    """MNIST-style IDX files (gzip or raw): an images file, or a folder with train-* and t10k-*."""
    path = existing(arg, "idx")
    if path.is_file():
        x, y = _idx_pair(path, _idx_labels_sibling(path))
        return ArrayDataset(x[:, None], y, name=f"idx:{path.name}")
    if not path.is_dir():
        raise err(path, "is not a regular file or folder")
    parts = {
        (prefix, kind): _idx_find(path, prefix, kind)
        for prefix in ("train", "t10k")
        for kind in ("images", "labels")
    }
    missing = [
        f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte[.gz]"
        for (prefix, kind), p in parts.items()
        if p is None
    ]
    if parts["train", "images"] is None or parts["t10k", "images"] is None:
        raise err(
            path,
            f"folder does not hold the MNIST layout (train-* and t10k-* IDX images and labels); "
            f"missing: {', '.join(missing)}",
        )
    if (parts["train", "labels"] is None) != (parts["t10k", "labels"] is None):
        raise err(path, f"has labels for only one part; missing: {', '.join(missing)}")
    x_train, y_train = _idx_pair(parts["train", "images"], parts["train", "labels"])
    x_test, y_test = _idx_pair(parts["t10k", "images"], parts["t10k", "labels"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise err(
            parts["t10k", "images"],
            f"images are {shape_str(x_test.shape[1:])} but the train images are "
            f"{shape_str(x_train.shape[1:])}",
        )
    x = np.concatenate([x_train, x_test])[:, None]
    y = None if y_train is None else np.concatenate([y_train, y_test])
    n_train = len(x_train)
    test = np.arange(n_train, n_train + len(x_test))
    return ArrayDataset(x, y, name=f"idx:{path.name}", test_indices=test)
