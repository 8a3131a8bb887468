"""Loaders for data on local disk: MNIST-style IDX files, CIFAR python batches, image folders
and numpy ``.npz``/``.npy`` arrays.

``make_dataset("idx:PATH")``, ``"cifar:PATH"``, ``"folder:PATH"``, ``"npz:PATH"``. Each returns an
:class:`~replab.data.base.ArrayDataset` (images uint8 or float in [0, 1], stored [N, C, H, W]).
Every bad input raises :class:`~replab.data.base.DataError` with one line naming the file and what
was wrong, never a raw error from numpy, gzip, pickle or Pillow.
"""

from __future__ import annotations

import codecs
import gzip
import importlib
import io
import pickle
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from replab.data.base import ArrayDataset, DataError
from replab.registry import register_dataset

# ----------------------------------------------------------------------------------------------
# Shared helpers


def _err(path: Path | str, msg: str) -> DataError:
    """A one-line DataError ``"PATH: msg"``."""
    text = f"{path}: {msg}"
    return DataError(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


def _short(exc: BaseException, limit: int = 160) -> str:
    """An exception's text, one line and not too long (for wrapping third-party errors)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _existing(arg: str | None, spec: str) -> Path:
    if not arg:
        raise DataError(f"{spec}: needs a path, e.g. '{spec}:/data/mnist'")
    path = Path(arg).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:
        raise _err(path, f"cannot access ({_short(exc)})") from None
    if not exists:
        raise _err(path, "no such file or directory")
    return path


def _need_file(path: Path) -> None:
    if path.is_dir():
        raise _err(path, "is a directory, expected a file")
    if not path.is_file():
        raise _err(path, "is not a regular file")


def _need_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise _err(path, f"is a file, expected a folder ({what})")


def _read_bytes(path: Path) -> bytes:
    _need_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _err(path, f"cannot read ({_short(exc)})") from None
    if not raw:
        raise _err(path, "empty file (0 bytes)")
    return raw


def _shape_str(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _is_int_dtype(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer)


# ----------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST, KMNIST, EMNIST ...)

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
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise _err(path, "truncated gzip stream (the compressed data ends early)") from None
        except (OSError, zlib.error) as exc:
            raise _err(path, f"corrupt gzip data ({_short(exc)})") from None
        if not raw:
            raise _err(path, "empty after gzip decompression")
    expected = 0x0800 | ndim
    want = f"expected 0x{expected:08X} (IDX uint8, {ndim} dim{'s' * (ndim > 1)}: {what})"
    if len(raw) < 4:
        raise _err(path, f"only {len(raw)} bytes, too short for an IDX header; {want}")
    (magic,) = struct.unpack(">I", raw[:4])
    code, dims = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_TYPES:
        raise _err(path, f"wrong magic number 0x{magic:08X}, not an IDX file; {want}")
    if code != 0x08 or dims != ndim:
        hint = " - a labels file?" if (code, dims) == (0x08, 1) else ""
        hint = " - an images file?" if (code, dims) == (0x08, 3) else hint
        got = f"IDX {_IDX_TYPES[code]}, {dims} dim{'s' * (dims != 1)}{hint}"
        raise _err(path, f"wrong magic number 0x{magic:08X} ({got}); {want}")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise _err(path, f"truncated IDX header: {len(raw)} bytes, the header needs {header}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    declared = int(np.prod(shape, dtype=np.int64))
    have = len(raw) - header
    if have < declared:
        raise _err(
            path,
            f"truncated: the header declares {_shape_str(shape)} = {declared} data bytes "
            f"but only {have} follow",
        )
    if have > declared:
        raise _err(
            path,
            f"{have - declared} bytes of extra data after the {declared} that the header "
            f"declares ({_shape_str(shape)})",
        )
    if shape[0] == 0:
        raise _err(path, f"holds no {what} (the header declares 0)")
    if 0 in shape:
        raise _err(path, f"declares an empty shape {_shape_str(shape)}")
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
            raise _err(
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
    path = _existing(arg, "idx")
    if path.is_file():
        x, y = _idx_pair(path, _idx_labels_sibling(path))
        return ArrayDataset(x[:, None], y, name=f"idx:{path.name}")
    if not path.is_dir():
        raise _err(path, "is not a regular file or folder")
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
        raise _err(
            path,
            f"folder does not hold the MNIST layout (train-* and t10k-* IDX images and labels); "
            f"missing: {', '.join(missing)}",
        )
    if (parts["train", "labels"] is None) != (parts["t10k", "labels"] is None):
        raise _err(path, f"has labels for only one part; missing: {', '.join(missing)}")
    x_train, y_train = _idx_pair(parts["train", "images"], parts["train", "labels"])
    x_test, y_test = _idx_pair(parts["t10k", "images"], parts["t10k", "labels"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _err(
            parts["t10k", "images"],
            f"images are {_shape_str(x_test.shape[1:])} but the train images are "
            f"{_shape_str(x_train.shape[1:])}",
        )
    x = np.concatenate([x_train, x_test])[:, None]
    y = None if y_train is None else np.concatenate([y_train, y_test])
    n_train = len(x_train)
    test = np.arange(n_train, n_train + len(x_test))
    return ArrayDataset(x, y, name=f"idx:{path.name}", test_indices=test)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 python batches


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR pickle may refer to: numpy array (and scalar) reconstruction."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:  # numpy < 2
        multiarray = importlib.import_module("numpy.core.multiarray")
        numeric = importlib.import_module("numpy.core.numeric")
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }
    for pkg in ("numpy.core", "numpy._core"):
        table[f"{pkg}.multiarray", "_reconstruct"] = multiarray._reconstruct
        table[f"{pkg}.multiarray", "scalar"] = multiarray.scalar  # numpy ints in a label list
        if hasattr(numeric, "_frombuffer"):  # protocol 5
            table[f"{pkg}.numeric", "_frombuffer"] = numeric._frombuffer
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals a CIFAR batch needs."""

    def __init__(self, file, path: Path):
        # encoding="bytes": the original CIFAR batches are Python 2 pickles (str -> bytes keys).
        super().__init__(file, encoding="bytes")
        self.path = path
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        obj = self.allowed.get((module, name))
        if obj is None:
            raise _err(
                self.path,
                f"pickle refers to {module}.{name}, which a CIFAR batch does not need; "
                "refused (only numpy array reconstruction is allowed)",
            )
        return obj

    def persistent_load(self, pid):
        raise _err(self.path, "pickle uses persistent ids, which a CIFAR batch does not; refused")


def _load_pickle(path: Path) -> dict:
    raw = _read_bytes(path)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except EOFError:
        raise _err(path, "truncated pickle (the data ends early)") from None
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise _err(path, "truncated pickle (the data ends early)") from None
        raise _err(path, f"not a readable pickle ({_short(exc)})") from None
    except Exception as exc:  # anything the unpickler raises on malformed input
        raise _err(path, f"not a readable pickle ({type(exc).__name__}: {_short(exc)})") from None
    if not isinstance(obj, dict):
        raise _err(path, f"pickle holds a {type(obj).__name__}, expected a dict (a CIFAR batch)")
    return obj


def _get(d: dict, key: str, path: Path, required: bool = True):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    if required:
        keys = ", ".join(sorted(repr(k) for k in d)) or "none"
        raise _err(path, f"CIFAR batch has no {key!r} key (keys: {keys})")
    return None


def _cifar_names(path: Path, key: str) -> list[str] | None:
    if not path.exists():
        return None
    meta = _load_pickle(path)
    names = _get(meta, key, path)
    if not isinstance(names, list | tuple) or not all(isinstance(n, bytes | str) for n in names):
        raise _err(path, f"{key!r} is not a list of strings")
    if not names:
        raise _err(path, f"{key!r} is empty")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    data = _get(d, "data", path)
    labels = _get(d, label_key, path)
    if not isinstance(data, np.ndarray):
        raise _err(path, f"'data' is a {type(data).__name__}, expected a uint8 array [N, 3072]")
    if data.dtype == object:
        raise _err(path, "'data' is an object array, expected uint8 [N, 3072]")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise _err(
            path,
            f"'data' has shape {list(data.shape)}, expected [N, 3072] (3x32x32 values per row)",
        )
    if len(data) == 0:
        raise _err(path, "CIFAR batch holds no images")
    if data.dtype != np.uint8:
        if not _is_int_dtype(data) or data.min() < 0 or data.max() > 255:
            raise _err(path, f"'data' has dtype {data.dtype}, expected uint8 (0..255)")
        data = data.astype(np.uint8)
    try:
        y = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise _err(path, f"{label_key!r} is not a list of integers ({_short(exc)})") from None
    if y.ndim != 1 or not _is_int_dtype(y):
        raise _err(path, f"{label_key!r} is not a list of integers (got {y.dtype}, {y.ndim}-D)")
    if len(y) != len(data):
        raise _err(path, f"{len(data)} images but {len(y)} labels in {label_key!r}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise _err(
            path, f"{label_key!r} out of range: found {lo}..{hi}, expected 0..{num_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), y.astype(np.int64)


_CIFAR_LAYOUT = (
    "expected data_batch_1..data_batch_5 and test_batch (CIFAR-10) or train and test (CIFAR-100)"
)


@register_dataset("cifar", takes_argument=True)
def cifar(arg: str) -> ArrayDataset:
    """CIFAR-10 or CIFAR-100 python batches (PATH: cifar-10-batches-py or cifar-100-python)."""
    path = _existing(arg, "cifar")
    _need_dir(path, _CIFAR_LAYOUT)
    # Accept the folder above the extracted archive too.
    if not any((path / n).exists() for n in ("data_batch_1", "test_batch", "train", "test")):
        for sub in ("cifar-10-batches-py", "cifar-100-python"):
            if (path / sub).is_dir():
                path = path / sub
                break

    ten = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if any((path / n).exists() for n in ten):
        missing = [n for n in ten if not (path / n).exists()]
        if missing:
            raise _err(path, f"incomplete CIFAR-10 folder; missing: {', '.join(missing)}")
        names = _cifar_names(path / "batches.meta", "label_names")
        k = len(names) if names else 10
        parts = [_cifar_batch(path / n, "labels", k) for n in ten]
    elif (path / "train").exists() or (path / "test").exists():
        missing = [n for n in ("train", "test") if not (path / n).exists()]
        if missing:
            raise _err(path, f"incomplete CIFAR-100 folder; missing: {', '.join(missing)}")
        names = _cifar_names(path / "meta", "fine_label_names")
        k = len(names) if names else 100
        parts = [_cifar_batch(path / n, "fine_labels", k) for n in ("train", "test")]
    else:
        raise _err(path, f"no CIFAR batches in this folder; {_CIFAR_LAYOUT}")

    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    n_test = len(parts[-1][0])
    test = np.arange(len(x) - n_test, len(x))
    return ArrayDataset(x, y, name=f"cifar:{path.name}", class_names=names, test_indices=test)


# ----------------------------------------------------------------------------------------------
# Image folder: one sub-folder per class

_GREY_MODES = {"1", "L", "LA", "La"}
_COLOUR_MODES = {"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


@register_dataset("folder", takes_argument=True)
def folder(arg: str) -> ArrayDataset:
    """An image folder with one sub-folder per class (all images the same size; read by Pillow)."""
    root = _existing(arg, "folder")
    _need_dir(root, "one sub-folder of images per class")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError("folder: reading images needs Pillow (pip install pillow)") from None
    exts = {e.lower() for e in Image.registered_extensions()}

    def is_image(p: Path) -> bool:
        return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts

    classes = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not classes:
        loose = sum(1 for p in root.iterdir() if is_image(p))
        hint = f" (it holds {loose} images directly; put them in class sub-folders)"
        hint = hint if loose else ""
        raise _err(root, f"no class sub-folders{hint}")
    files: list[tuple[Path, int]] = []
    for label, d in enumerate(classes):
        images = sorted((p for p in d.iterdir() if is_image(p)), key=lambda p: p.name)
        if not images:
            raise _err(d, "class folder holds no images")
        files.extend((p, label) for p in images)

    # Pass 1: headers only (cheap): readable, supported mode, one size.
    modes = []
    first: tuple[Path, tuple[int, int]] | None = None
    for p, _ in files:
        try:
            with Image.open(p) as im:
                size, mode = im.size, im.mode
        except Exception as exc:  # Pillow raises many kinds on a bad file
            raise _err(p, f"unreadable image ({_short(exc)})") from None
        if mode not in _GREY_MODES and mode not in _COLOUR_MODES:
            raise _err(p, f"image mode {mode} (e.g. 16-bit or float) is not supported; use 8-bit")
        if first is None:
            first = (p, size)
        elif size != first[1]:
            raise _err(
                p,
                f"size {size[0]}x{size[1]} (WxH) differs from {first[1][0]}x{first[1][1]} of "
                f"{first[0]}; all images must have the same size",
            )
        modes.append(mode)

    # Pass 2: decode, converted to L if every image is grey, else RGB.
    target = "L" if all(m in _GREY_MODES for m in modes) else "RGB"
    w, h = first[1]
    channels = 1 if target == "L" else 3
    x = np.empty((len(files), channels, h, w), dtype=np.uint8)
    for i, (p, _) in enumerate(files):
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert(target))
        except Exception as exc:
            raise _err(p, f"unreadable image ({_short(exc)})") from None
        if arr.shape[:2] != (h, w):
            raise _err(p, f"decoded to {arr.shape[1]}x{arr.shape[0]}, expected {w}x{h}")
        x[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    y = np.array([label for _, label in files], dtype=np.int64)
    return ArrayDataset(x, y, name=f"folder:{root.name}", class_names=[d.name for d in classes])


# ----------------------------------------------------------------------------------------------
# numpy .npz / .npy

_X_KEYS = ("x", "images", "X")
_Y_KEYS = ("y", "labels", "Y")
_CHANNELS = (1, 3, 4)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _npz_member(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "object" in str(exc).lower() or "pickle" in str(exc).lower():
            raise _err(path, f"array {key!r} is an object array (needs pickle, refused)") from None
        raise _err(path, f"array {key!r} is unreadable ({_short(exc)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _err(path, f"array {key!r} is corrupt or truncated ({_short(exc)})") from None


def _to_nchw(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise _err(
            path,
            f"image array {key!r} has shape {list(x.shape)}; "
            "expected [N, H, W], [N, H, W, C] or [N, C, H, W]",
        )
    first, last = x.shape[1] in _CHANNELS, x.shape[-1] in _CHANNELS
    if first and last:  # e.g. [N, 3, 3, 3] or [N, 4, 4, 3]: decide by square H, W
        nhwc_square, nchw_square = x.shape[1] == x.shape[2], x.shape[2] == x.shape[3]
        if nhwc_square == nchw_square:
            raise _err(
                path,
                f"image array {key!r} has shape {list(x.shape)}: cannot tell whether it is "
                "[N, H, W, C] or [N, C, H, W]",
            )
        first, last = nchw_square, nhwc_square
    if last:
        return x.transpose(0, 3, 1, 2)
    if first:
        return x
    raise _err(
        path,
        f"image array {key!r} has shape {list(x.shape)}: no channel axis of size 1, 3 or 4 "
        "after N or at the end",
    )


def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.dtype == object:
        raise _err(path, f"array {key!r} is an object array, expected uint8 or float images")
    x = _to_nchw(x, path, key)
    if len(x) == 0 or 0 in x.shape:
        raise _err(path, f"image array {key!r} is empty (shape {list(x.shape)})")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise _err(
            path,
            f"image array {key!r} has dtype {x.dtype}; expected uint8 (0..255, scaled by 1/255) "
            "or float in [0, 1]",
        )
    if not np.isfinite(x).all():
        raise _err(path, f"image array {key!r} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise _err(
            path,
            f"float images {key!r} must lie in [0, 1] but range over [{lo:g}, {hi:g}]"
            + (" (uint8-scale values? divide by 255 or save as uint8)" if hi > 1.0 else ""),
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _npz_labels(y: np.ndarray, n: int, k: int | None, path: Path, key: str) -> np.ndarray:
    if y.dtype == object:
        raise _err(path, f"array {key!r} is an object array, expected integer labels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _err(path, f"labels {key!r} have shape {list(y.shape)}, expected [N]")
    if not _is_int_dtype(y):
        raise _err(path, f"labels {key!r} have dtype {y.dtype}, expected integers 0..K-1")
    if len(y) != n:
        raise _err(path, f"{n} images but {len(y)} labels in {key!r}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or (k is not None and hi >= k):
        want = f"0..{k - 1} ({k} class names)" if k is not None else "0..K-1"
        raise _err(path, f"labels {key!r} out of range: found {lo}..{hi}, expected {want}")
    return y.astype(np.int64)


def _npz_read(f, path: Path):
    """(images, labels or None, class names or None) from an open .npy/.npz file."""
    head = f.read(len(_NPY_MAGIC))
    if not head:
        raise _err(path, "empty file (0 bytes)")
    if not (head.startswith(_NPY_MAGIC) or head.startswith(_ZIP_MAGIC)):
        raise _err(path, "not a .npy or .npz file (no numpy or zip header)")
    f.seek(0)
    try:
        loaded = np.load(f, allow_pickle=False)
    except ValueError as exc:
        if "object" in str(exc).lower() or "pickle" in str(exc).lower():
            raise _err(path, "holds an object array (needs pickle, refused)") from None
        raise _err(path, f"corrupt or truncated .npy ({_short(exc)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _err(path, f"corrupt or truncated file ({_short(exc)})") from None

    if isinstance(loaded, np.ndarray):  # .npy: images only
        return _npz_images(loaded, path, "array"), None, None
    class_names = None
    y = None
    with loaded:
        keys = list(loaded.files)
        x_key = next((k for k in _X_KEYS if k in keys), None)
        if x_key is None:
            raise _err(
                path,
                f"no image array: expected a key x, images or X (found: "
                f"{', '.join(keys) or 'none'})",
            )
        x = _npz_images(_npz_member(loaded, x_key, path), path, x_key)
        if "class_names" in keys:
            names = _npz_member(loaded, "class_names", path)
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
                raise _err(path, "'class_names' must be a non-empty 1-D array of strings")
            class_names = [
                n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                for n in names.tolist()
            ]
        y_key = next((k for k in _Y_KEYS if k in keys), None)
        if y_key is not None:
            k = None if class_names is None else len(class_names)
            y = _npz_labels(_npz_member(loaded, y_key, path), len(x), k, path, y_key)
        elif class_names is not None:
            raise _err(path, "has 'class_names' but no labels (y, labels or Y)")
    return x, y, class_names


@register_dataset("npz", takes_argument=True)
def npz(arg: str) -> ArrayDataset:
    """A .npz with images under x/images/X and optional labels y/labels/Y, or an .npy of images."""
    path = _existing(arg, "npz")
    _need_file(path)
    try:
        # Our own handle, closed on every path (np.load leaks it when a zip fails to open).
        with path.open("rb") as f:
            x, y, class_names = _npz_read(f, path)
    except OSError as exc:
        raise _err(path, f"cannot read ({_short(exc)})") from None
    return ArrayDataset(x, y, name=f"npz:{path.name}", class_names=class_names)
