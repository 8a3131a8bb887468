"""Large arrays read from their files without a decoded copy in memory.

- :func:`npz_member`: an array inside an ``.npz``. Stored uncompressed (``np.savez``), it is
  memory-mapped where it lies in the zip file. Compressed (``np.savez_compressed``), it is
  decompressed once, in chunks, into a ``.npy`` under replab's cache folder (written under a
  temporary name and renamed; keyed by the file's path, size and modification time), which every
  later run maps. With the cache off (``REPLAB_CACHE=off``) it is decompressed into memory.
- :func:`raw_block`: ``count`` records of a binary file at an offset, memory-mapped, after
  checking the file holds them all; :func:`gunzipped`, a gzip file decompressed once into the
  cache.
- :func:`hdf5_rows`: an HDF5 dataset to read rows from: memory-mapped where it lies when stored
  contiguous and unfiltered, else copied once into the cache as above (with the cache off, the
  dataset itself, read lazily by h5py).
- :func:`read_rows`: rows of a mapped array or an HDF5 dataset in any order, each read once.

Object arrays (pickles) are never loaded: their header is read and refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from replab.data.base import DataError
from replab.data.readers import NUMPY_FILE_FAILURES, err, short
from replab.files import atomic_path, cache_dir

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip member's local file header (30 bytes)
_COPY_CHUNK = 64 * 2**20


def _npy_header(f, path: Path, key: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran order) of the .npy stream ``f``, positioned after its header."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except NUMPY_FILE_FAILURES as e:
        raise err(path, f"array {key!r} has no readable .npy header ({short(e)})") from None
    if dtype.hasobject:
        raise err(path, f"array {key!r} is an object array (needs pickle, refused)")
    return tuple(int(s) for s in shape), dtype, fortran


def _zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except NUMPY_FILE_FAILURES as e:
        raise err(path, f"not a readable .npz (zip) file ({short(e)})") from None


def npz_keys(path: Path) -> list[str]:
    """The array names of an ``.npz``, read from its directory (no array is loaded)."""
    with _zip(path) as z:
        return [n.removesuffix(".npy") for n in z.namelist() if n.endswith(".npy")]


def npz_member(path: Path, key: str) -> np.ndarray:
    """The array ``key`` of the ``.npz`` at ``path``, memory-mapped (see the module's note)."""
    path = Path(path)
    with _zip(path) as z:
        try:
            info = z.getinfo(f"{key}.npy")
        except KeyError:
            keys = ", ".join(n.removesuffix(".npy") for n in z.namelist()) or "none"
            raise err(path, f"has no array {key!r} (it holds: {keys})") from None
        try:
            if info.compress_type == zipfile.ZIP_STORED:
                return _map_stored(path, info, key)
            return _map_cached(path, z, info, key)
        except DataError:
            raise
        except NUMPY_FILE_FAILURES as e:
            # a damaged zip entry (its header, its compression method) met by zipfile itself
            raise err(path, f"array {key!r} is corrupt or truncated ({short(e)})") from None


def file_key(paths: list[Path], *parts: str) -> str:
    """A cache name for what was computed from ``paths``: their resolved paths, sizes and
    modification times (a file replaced or touched is converted again), and ``parts``."""
    stamps = []
    for p in paths:
        st = Path(p).stat()
        stamps.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join([*stamps, *parts]).encode()).hexdigest()[:32]


def _map_stored(path: Path, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(_LOCAL_HEADER.size)
        if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            raise err(path, f"array {key!r}: damaged zip entry (no local header)")
        fields = _LOCAL_HEADER.unpack(head)
        f.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])
        shape, dtype, fortran = _npy_header(f, path, key)
        offset = f.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > size or nbytes > info.file_size:
        raise err(
            path,
            f"truncated: array {key!r} of shape {list(shape)} needs {nbytes} bytes, the file "
            f"holds {max(0, min(size - offset, info.file_size))}",
        )
    if nbytes == 0:
        return np.zeros(shape, dtype)
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _declared(shape, dtype, info: zipfile.ZipInfo, path: Path, key: str) -> int:
    """The bytes a member's header declares, refused when the member does not hold them (so a
    damaged header never makes us allocate or write more than the file could fill)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > info.file_size or nbytes < 0:
        raise err(path, f"array {key!r} declares {list(shape)} {dtype}, more than it holds")
    return nbytes


def _map_cached(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    root = cache_dir()
    if root is None:  # no cache: decoded in memory, the one copy this run needs
        with z.open(info) as member:
            shape, dtype, fortran = _npy_header(member, path, key)
            _declared(shape, dtype, info, path, key)
            data = _read_exactly(member, shape, dtype, path, key)
        return data.reshape(shape, order="F" if fortran else "C")
    cached = root / "arrays" / f"{file_key([path], key)}.npy"
    if cached.is_file():
        try:
            return np.load(cached, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError):
            pass  # damaged: convert again
    with z.open(info) as member:
        shape, dtype, fortran = _npy_header(member, path, key)
        nbytes = _declared(shape, dtype, info, path, key)
        with atomic_path(cached) as tmp:
            header = _npy_header_bytes(tmp, dtype, shape, fortran)
            with open(tmp, "r+b") as f:
                f.seek(header)
                copied = _copy(member, f, nbytes, path, key)
            if copied != nbytes:
                raise err(path, f"truncated: array {key!r} needs {nbytes} bytes, got {copied}")
    return np.load(cached, mmap_mode="r", allow_pickle=False)


def _npy_header_bytes(path: Path, dtype, shape, fortran: bool = False) -> int:
    """Write a .npy file of ``shape`` at ``path`` (its data not yet written); its header size."""
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=dtype, shape=shape, fortran_order=fortran
    )
    header = out.offset
    del out  # only the header is kept: the data is copied in as bytes
    return header


def _copy(src, dst, nbytes: int, path: Path, key: str) -> int:
    copied = 0
    try:
        while copied < nbytes:
            chunk = src.read(min(_COPY_CHUNK, nbytes - copied))
            if not chunk:
                break
            dst.write(chunk)
            copied += len(chunk)
        src.read(1)  # reading to the end makes zipfile check the member's CRC
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise err(path, f"array {key!r} is corrupt or truncated ({short(e)})") from None
    return copied


def _read_exactly(f, shape, dtype, path: Path, key: str) -> np.ndarray:
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    try:
        while got < nbytes:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        f.read(1)  # CRC check at the end of the member
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise err(path, f"array {key!r} is corrupt or truncated ({short(e)})") from None
    if got != nbytes:
        raise err(path, f"truncated: array {key!r} needs {nbytes} bytes, got {got}")
    return np.frombuffer(buf, dtype=dtype)


def raw_block(source: Path | bytes, offset: int, dtype, shape: tuple[int, ...], name=None):
    """``shape`` values of ``dtype`` at ``offset`` of a binary file (memory-mapped) or of bytes
    already in memory; DataError naming ``name`` (default: the file) when there are fewer bytes
    than that, or more."""
    dtype = np.dtype(dtype)
    in_memory = isinstance(source, bytes | bytearray | memoryview)
    name = name or source
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = len(source) if in_memory else Path(source).stat().st_size
    if size < need:
        raise err(name, f"truncated: the header promises {need} bytes, the file holds {size}")
    if size > need:
        raise err(name, f"{size - need} bytes of extra data after the {need} the header promises")
    if need == offset:
        return np.zeros(shape, dtype)
    if in_memory:
        return np.frombuffer(source, dtype=dtype, offset=offset).reshape(shape)
    return np.memmap(source, dtype=dtype, mode="r", offset=offset, shape=shape)


def gunzipped(path: Path) -> Path | bytes:
    """A gzip file's contents: decompressed once into replab's cache (the copy's path, for
    mapping), or into memory with the cache off. DataError when the stream is damaged."""
    path = Path(path)

    def inflate(dst) -> None:
        try:
            with gzip.open(path, "rb") as src:
                while chunk := src.read(_COPY_CHUNK):
                    dst.write(chunk)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise err(path, f"not a readable gzip file ({short(e)})") from None

    if cache_dir() is None:
        buffer = io.BytesIO()
        inflate(buffer)
        return buffer.getvalue()

    def build(tmp: Path) -> None:
        with open(tmp, "wb") as dst:
            inflate(dst)

    return copy_into_cache(f"files/{file_key([path])}-{path.name.removesuffix('.gz')}", build)


def hdf5_rows(path: Path, dataset):
    """The h5py ``dataset`` of the file at ``path`` as something to read rows from without a
    decoded copy in memory (see the module's note). Damage found here is a DataError."""
    shape, dtype = tuple(dataset.shape), np.dtype(dataset.dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    offset = dataset.id.get_offset()  # None unless stored contiguous with its bytes allocated
    if offset is not None and dataset.chunks is None and dataset.compression is None:
        size = Path(path).stat().st_size
        if offset + nbytes > size:
            raise err(path, f"truncated: {dataset.name} needs {nbytes} bytes at {offset}, the file "
                      f"holds {size}")  # fmt: skip
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    if cache_dir() is None:
        return dataset

    def convert(tmp: Path) -> None:
        header = _npy_header_bytes(tmp, dtype, shape)
        step = max(1, _COPY_CHUNK // max(1, nbytes // shape[0]))
        with open(tmp, "r+b") as f:  # written, not mapped: the copy never counts as our memory
            f.seek(header)
            for start in range(0, shape[0], step):
                f.write(np.ascontiguousarray(dataset[start : start + step]).tobytes())

    cached = copy_into_cache(f"arrays/{file_key([path], dataset.name)}.npy", convert)
    return np.load(cached, mmap_mode="r", allow_pickle=False)


def read_rows(array, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` for a NumPy (or memory-mapped) array or an h5py dataset: the distinct rows
    are read once each, in increasing order (what HDF5 selections need and disks like)."""
    rows = np.asarray(rows, dtype=np.int64)
    unique, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(array[unique])[inverse]


def copy_into_cache(name: str, build) -> Path | None:
    """``cache_dir()/name``, built by ``build(path)`` once (atomically); None with the cache off."""
    root = cache_dir()
    if root is None:
        return None
    target = root / name
    if not target.exists():
        with atomic_path(target) as tmp:
            build(tmp)
    return target


class StackedRows:
    """Rows of several arrays of one row shape, read as one array (each stays mapped): the
    parts a release ships as separate files (smallNORB's and STL-10's train and test)."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.starts[-1]), *parts[0].shape[1:])

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.parts[0].dtype)
        for k, part in enumerate(self.parts):
            take = which == k
            if take.any():
                out[take] = part[rows[take] - self.starts[k]]
        return out
