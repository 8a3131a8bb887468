"""CIFAR-10 and CIFAR-100 python batches, read with a restricted unpickler: ``cifar:PATH``.

The batches are pickles; the unpickler resolves only the numpy globals an array needs, so a
tampered file cannot run code. The ``test_batch`` (or ``test``) file is the test split.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from replab.data.base import ArrayDataset, DataError
from replab.data.readers import err, existing, is_int_dtype, need_dir, read_bytes, short
from replab.registry import register_dataset


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
            raise err(
                self.path,
                f"pickle refers to {module}.{name}, which a CIFAR batch does not need; "
                "refused (only numpy array reconstruction is allowed)",
            )
        return obj

    def persistent_load(self, pid):
        raise err(self.path, "pickle uses persistent ids, which a CIFAR batch does not; refused")


def _load_pickle(path: Path) -> dict:
    raw = read_bytes(path)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except EOFError:
        raise err(path, "truncated pickle (the data ends early)") from None
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise err(path, "truncated pickle (the data ends early)") from None
        raise err(path, f"not a readable pickle ({short(exc)})") from None
    except Exception as exc:  # anything the unpickler raises on malformed input
        raise err(path, f"not a readable pickle ({type(exc).__name__}: {short(exc)})") from None
    if not isinstance(obj, dict):
        raise err(path, f"pickle holds a {type(obj).__name__}, expected a dict (a CIFAR batch)")
    return obj


def _get(d: dict, key: str, path: Path, required: bool = True):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    if required:
        keys = ", ".join(sorted(repr(k) for k in d)) or "none"
        raise err(path, f"CIFAR batch has no {key!r} key (keys: {keys})")
    return None


def _cifar_names(path: Path, key: str) -> list[str] | None:
    if not path.exists():
        return None
    meta = _load_pickle(path)
    names = _get(meta, key, path)
    if not isinstance(names, list | tuple) or not all(isinstance(n, bytes | str) for n in names):
        raise err(path, f"{key!r} is not a list of strings")
    if not names:
        raise err(path, f"{key!r} is empty")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    data = _get(d, "data", path)
    labels = _get(d, label_key, path)
    if not isinstance(data, np.ndarray):
        raise err(path, f"'data' is a {type(data).__name__}, expected a uint8 array [N, 3072]")
    if data.dtype == object:
        raise err(path, "'data' is an object array, expected uint8 [N, 3072]")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise err(
            path,
            f"'data' has shape {list(data.shape)}, expected [N, 3072] (3x32x32 values per row)",
        )
    if len(data) == 0:
        raise err(path, "CIFAR batch holds no images")
    if data.dtype != np.uint8:
        if not is_int_dtype(data) or data.min() < 0 or data.max() > 255:
            raise err(path, f"'data' has dtype {data.dtype}, expected uint8 (0..255)")
        data = data.astype(np.uint8)
    try:
        y = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise err(path, f"{label_key!r} is not a list of integers ({short(exc)})") from None
    if y.ndim != 1 or not is_int_dtype(y):
        raise err(path, f"{label_key!r} is not a list of integers (got {y.dtype}, {y.ndim}-D)")
    if len(y) != len(data):
        raise err(path, f"{len(data)} images but {len(y)} labels in {label_key!r}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise err(
            path, f"{label_key!r} out of range: found {lo}..{hi}, expected 0..{num_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), y.astype(np.int64)


_CIFAR_LAYOUT = (
    "expected data_batch_1..data_batch_5 and test_batch (CIFAR-10) or train and test (CIFAR-100)"
)


@register_dataset("cifar", takes_argument=True)
def cifar(arg: str) -> ArrayDataset:
    """CIFAR-10 or CIFAR-100 python batches (PATH: cifar-10-batches-py or cifar-100-python)."""
    path = existing(arg, "cifar")
    need_dir(path, _CIFAR_LAYOUT)
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
            raise err(path, f"incomplete CIFAR-10 folder; missing: {', '.join(missing)}")
        names = _cifar_names(path / "batches.meta", "label_names")
        k = len(names) if names else 10
        parts = [_cifar_batch(path / n, "labels", k) for n in ten]
    elif (path / "train").exists() or (path / "test").exists():
        missing = [n for n in ("train", "test") if not (path / n).exists()]
        if missing:
            raise err(path, f"incomplete CIFAR-100 folder; missing: {', '.join(missing)}")
        names = _cifar_names(path / "meta", "fine_label_names")
        k = len(names) if names else 100
        parts = [_cifar_batch(path / n, "fine_labels", k) for n in ("train", "test")]
    else:
        raise err(path, f"no CIFAR batches in this folder; {_CIFAR_LAYOUT}")

    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    n_test = len(parts[-1][0])
    test = np.arange(len(x) - n_test, len(x))
    return ArrayDataset(x, y, name=f"cifar:{path.name}", class_names=names, test_indices=test)
