"""Atomic file writes: the one way replab puts a file on disk.

Every file is written under a temporary name in its own folder, flushed to disk and renamed into
place, so a crash leaves either the old file or the new one, never half of one. The temporary
file is created with the default permissions (0o666 less the umask), as a plain ``open`` would.
No torch here: the configuration layer writes through this module too.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path``: write it inside the ``with``; on success it is
    flushed and renamed onto ``path``, on any error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    """``obj`` as indented JSON (NaN is written as ``NaN``; convert it first where JSON readers
    other than Python's will read the file)."""
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def append_jsonl(path: str | Path, record: dict) -> None:
    """One JSON line appended (logs grow by whole lines; a reader skips a torn last line)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def cache_dir() -> Path | None:
    """Where replab keeps what it can compute again (raw-input baselines, memory-mapped copies
    of compressed data files): ``$REPLAB_CACHE`` (``off`` disables caching), else
    ``$XDG_CACHE_HOME/replab`` or ``~/.cache/replab``."""
    where = os.environ.get("REPLAB_CACHE")
    if where is not None:
        return None if where.strip().lower() in ("", "off", "0", "none") else Path(where)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "replab"
