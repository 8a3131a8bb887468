"""NumPy arrays of images: a ``.npz`` (images under x/images/X, optional labels) or an ``.npy``.

Object arrays are refused (they would need pickle); float images must lie in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replab.data.base import ArrayDataset
from replab.data.readers import (
    NUMPY_FILE_FAILURES,
    err,
    existing,
    is_int_dtype,
    need_file,
    short,
)
from replab.registry import register_dataset

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
            raise err(path, f"array {key!r} is an object array (needs pickle, refused)") from None
        raise err(path, f"array {key!r} is unreadable ({short(exc)})") from None
    except NUMPY_FILE_FAILURES as exc:
        raise err(path, f"array {key!r} is corrupt or truncated ({short(exc)})") from None


def _to_nchw(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise err(
            path,
            f"image array {key!r} has shape {list(x.shape)}; "
            "expected [N, H, W], [N, H, W, C] or [N, C, H, W]",
        )
    first, last = x.shape[1] in _CHANNELS, x.shape[-1] in _CHANNELS
    if first and last:  # e.g. [N, 3, 3, 3] or [N, 4, 4, 3]: decide by square H, W
        nhwc_square, nchw_square = x.shape[1] == x.shape[2], x.shape[2] == x.shape[3]
        if nhwc_square == nchw_square:
            raise err(
                path,
                f"image array {key!r} has shape {list(x.shape)}: cannot tell whether it is "
                "[N, H, W, C] or [N, C, H, W]",
            )
        first, last = nchw_square, nhwc_square
    if last:
        return x.transpose(0, 3, 1, 2)
    if first:
        return x
    raise err(
        path,
        f"image array {key!r} has shape {list(x.shape)}: no channel axis of size 1, 3 or 4 "
        "after N or at the end",
    )


def image_array(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.dtype == object:
        raise err(path, f"array {key!r} is an object array, expected uint8 or float images")
    x = _to_nchw(x, path, key)
    if len(x) == 0 or 0 in x.shape:
        raise err(path, f"image array {key!r} is empty (shape {list(x.shape)})")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise err(
            path,
            f"image array {key!r} has dtype {x.dtype}; expected uint8 (0..255, scaled by 1/255) "
            "or float in [0, 1]",
        )
    if not np.isfinite(x).all():
        raise err(path, f"image array {key!r} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise err(
            path,
            f"float images {key!r} must lie in [0, 1] but range over [{lo:g}, {hi:g}]"
            + (" (uint8-scale values? divide by 255 or save as uint8)" if hi > 1.0 else ""),
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _npz_labels(y: np.ndarray, n: int, k: int | None, path: Path, key: str) -> np.ndarray:
    if y.dtype == object:
        raise err(path, f"array {key!r} is an object array, expected integer labels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise err(path, f"labels {key!r} have shape {list(y.shape)}, expected [N]")
    if not is_int_dtype(y):
        raise err(path, f"labels {key!r} have dtype {y.dtype}, expected integers 0..K-1")
    if len(y) != n:
        raise err(path, f"{n} images but {len(y)} labels in {key!r}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or (k is not None and hi >= k):
        want = f"0..{k - 1} ({k} class names)" if k is not None else "0..K-1"
        raise err(path, f"labels {key!r} out of range: found {lo}..{hi}, expected {want}")
    return y.astype(np.int64)


def _npz_read(f, path: Path):
    """(images, labels or None, class names or None) from an open .npy/.npz file."""
    head = f.read(len(_NPY_MAGIC))
    if not head:
        raise err(path, "empty file (0 bytes)")
    if not (head.startswith(_NPY_MAGIC) or head.startswith(_ZIP_MAGIC)):
        raise err(path, "not a .npy or .npz file (no numpy or zip header)")
    f.seek(0)
    try:
        loaded = np.load(f, allow_pickle=False)
    except ValueError as exc:
        if "object" in str(exc).lower() or "pickle" in str(exc).lower():
            raise err(path, "holds an object array (needs pickle, refused)") from None
        raise err(path, f"corrupt or truncated .npy ({short(exc)})") from None
    except NUMPY_FILE_FAILURES as exc:
        raise err(path, f"corrupt or truncated file ({short(exc)})") from None

    if isinstance(loaded, np.ndarray):  # .npy: images only
        return image_array(loaded, path, "array"), None, None
    class_names = None
    y = None
    with loaded:
        keys = list(loaded.files)
        x_key = next((k for k in _X_KEYS if k in keys), None)
        if x_key is None:
            raise err(
                path,
                f"no image array: expected a key x, images or X (found: "
                f"{', '.join(keys) or 'none'})",
            )
        x = image_array(_npz_member(loaded, x_key, path), path, x_key)
        if "class_names" in keys:
            names = _npz_member(loaded, "class_names", path)
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
                raise err(path, "'class_names' must be a non-empty 1-D array of strings")
            class_names = [
                n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                for n in names.tolist()
            ]
        y_key = next((k for k in _Y_KEYS if k in keys), None)
        if y_key is not None:
            k = None if class_names is None else len(class_names)
            y = _npz_labels(_npz_member(loaded, y_key, path), len(x), k, path, y_key)
        elif class_names is not None:
            raise err(path, "has 'class_names' but no labels (y, labels or Y)")
    return x, y, class_names


@register_dataset("npz", takes_argument=True)
def npz(arg: str) -> ArrayDataset:
    """A .npz with images under x/images/X and optional labels y/labels/Y, or an .npy of images."""
    path = existing(arg, "npz")
    need_file(path)
    try:
        # Our own handle, closed on every path (np.load leaks it when a zip fails to open).
        with path.open("rb") as f:
            x, y, class_names = _npz_read(f, path)
    except OSError as exc:
        raise err(path, f"cannot read ({short(exc)})") from None
    return ArrayDataset(x, y, name=f"npz:{path.name}", class_names=class_names)
