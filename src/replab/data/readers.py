"""What the file loaders share: one-line errors naming the file, and checked reads.

Every bad input a loader meets becomes a ``DataError`` whose message is ``"PATH: what was
wrong"`` on one line, never a raw error from numpy, gzip, pickle or Pillow.
"""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from replab.data.base import DataError
from replab.specs import Option, parse_path_options

# What numpy and zipfile raise on a damaged .npy or .npz: the zip and deflate layers (zipfile
# raises NotImplementedError on a version or method field it does not know), a short read, and
# numpy's header parser (which tokenizes the header's Python literal).
NUMPY_FILE_FAILURES = (
    NotImplementedError,
    ValueError,
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    tokenize.TokenError,
    SyntaxError,
)


def err(path: Path | str, msg: str) -> DataError:
    """A one-line DataError ``"PATH: msg"``."""
    text = f"{path}: {msg}"
    return DataError(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


def short(exc: BaseException, limit: int = 160) -> str:
    """An exception's text, one line and not too long (for wrapping third-party errors)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def existing(arg: str | None, spec: str) -> Path:
    if not arg:
        raise DataError(f"{spec}: needs a path, e.g. '{spec}:/data/mnist'")
    path = Path(arg).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:
        raise err(path, f"cannot access ({short(exc)})") from None
    if not exists:
        raise err(path, "no such file or directory")
    return path


def need_file(path: Path) -> None:
    if path.is_dir():
        raise err(path, "is a directory, expected a file")
    if not path.is_file():
        raise err(path, "is not a regular file")


def need_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise err(path, f"is a file, expected a folder ({what})")


def read_bytes(path: Path) -> bytes:
    need_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise err(path, f"cannot read ({short(exc)})") from None
    if not raw:
        raise err(path, "empty file (0 bytes)")
    return raw


def shape_str(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def is_int_dtype(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer)


def parse_options(
    arg: str, spec: str, options: tuple[Option, ...], example: str = "PATH"
) -> tuple[Path, dict]:
    """``PATH,key=value,...`` split by ``specs.parse_path_options``; a mistake is a DataError."""
    try:
        return parse_path_options(arg, spec, options, example)
    except ValueError as e:
        raise DataError(str(e)) from None


def is_image_file(path: Path) -> bool:
    """A visible file whose suffix Pillow reads (what the image-folder loaders take)."""
    from PIL import Image

    suffixes = {e.lower() for e in Image.registered_extensions()}
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes
