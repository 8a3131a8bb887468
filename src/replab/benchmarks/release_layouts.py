"""Full-size files in the release layouts, with made-up pixels, for ``bench_loaders``.

The real files cannot be downloaded here; what a loader's time and memory depend on is the
layout (keys, dtypes, compression, row order, image count), which these reproduce at full size.
The pixels are simple synthetic scenes (flat colours and a block that moves with the factors), so
compressed files compress about as much as real ones; dSprites alone is drawn by replab's own
renderer, which makes ``check-sprites`` on it a check of the check (every pixel must agree).
Each writer streams in chunks (never the whole array in memory) and writes atomically.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from replab.files import atomic_path

CHUNK = 16_384  # images per write


def _grid(sizes, start: int, stop: int) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(start, stop), sizes), axis=1)


def _npy_header(dtype, shape) -> bytes:
    import io

    header = io.BytesIO()
    descr = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(header, {**descr, "shape": tuple(shape)})
    return header.getvalue()


def _member(z: zipfile.ZipFile, key: str, dtype, shape, chunks: Iterator[np.ndarray]) -> None:
    """One ``KEY.npy`` of an npz, written chunk by chunk."""
    with z.open(f"{key}.npy", "w", force_zip64=True) as f:
        f.write(_npy_header(dtype, shape))
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def _scenes(factors: np.ndarray, sizes, side: int = 64, channels: int = 3) -> np.ndarray:
    """uint8 [n, side, side, channels]: a wall colour above a floor colour and a square whose
    size and place follow the factors (the first factors set the colours, the last the place)."""
    n, k = factors.shape
    unit = factors / np.maximum(np.asarray(sizes) - 1, 1)  # each factor in [0, 1]
    rows = np.arange(side)[None, :, None]
    cols = np.arange(side)[None, None, :]
    half = (4 + 12 * unit[:, min(2, k - 1)])[:, None, None]
    cx = (16 + 32 * unit[:, -1])[:, None, None]
    cy = (16 + 32 * unit[:, -2 if k > 1 else -1])[:, None, None]
    inside = (np.abs(rows - cy) < half) & (np.abs(cols - cx) < half)
    out = np.empty((n, side, side, channels), dtype=np.uint8)
    for c in range(channels):
        wall = 40 + 200 * ((unit[:, 0] + 0.3 * c) % 1.0)
        floor = 40 + 200 * ((unit[:, min(1, k - 1)] + 0.5 * c) % 1.0)
        thing = 255 - wall
        background = np.where(rows < side // 2, wall[:, None, None], floor[:, None, None])
        out[..., c] = np.where(inside, thing[:, None, None], background)
    return out


def dsprites(path: Path) -> None:
    """dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz: compressed, rendered by replab."""
    from replab.data.sprites import render_np

    sizes = [1, 3, 6, 40, 32, 32]
    n = int(np.prod(sizes))
    classes = (_grid(sizes, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK))

    def imgs():
        for s in range(0, n, CHUNK):
            yield render_np(_grid(sizes, s, min(s + CHUNK, n))[:, 1:])[:, 0].astype(np.uint8)

    def values():
        for s in range(0, n, CHUNK):
            yield _grid(sizes, s, min(s + CHUNK, n)) / np.maximum(np.asarray(sizes) - 1, 1)

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        _member(z, "imgs", np.uint8, (n, 64, 64), imgs())
        _member(z, "latents_classes", np.int64, (n, 6), classes)
        _member(z, "latents_values", np.float64, (n, 6), values())
        with z.open("metadata.npy", "w") as f:  # a pickle, as in the release (never loaded)
            np.save(f, np.array({"latents_sizes": np.array(sizes)}, dtype=object))


def shapes3d(path: Path) -> None:
    """3dshapes.h5: images in gzip-compressed chunks (h5py's own chunk shape), labels as values."""
    import h5py

    sizes = [10, 10, 10, 8, 4, 15]
    values = [np.linspace(0, 0.9, 10)] * 3 + [
        np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)
    ]  # fmt: skip
    n = int(np.prod(sizes))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", (n, 64, 64, 3), np.uint8, compression="gzip")
        labels = f.create_dataset("labels", (n, 6), np.float64)
        for s in range(0, n, CHUNK):
            index = _grid(sizes, s, min(s + CHUNK, n))
            images[s : s + len(index)] = _scenes(index, sizes)
            labels[s : s + len(index)] = np.stack(
                [values[j][index[:, j]] for j in range(6)], axis=1
            )


def mpi3d(path: Path) -> None:
    """mpi3d_toy.npz: the 1,036,800 images stored uncompressed, as released."""
    sizes = [6, 6, 2, 3, 3, 40, 40]
    n = int(np.prod(sizes))
    chunks = (_scenes(_grid(sizes, s, min(s + CHUNK, n)), sizes) for s in range(0, n, CHUNK))
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        _member(z, "images", np.uint8, (n, 64, 64, 3), chunks)


def smallnorb(folder: Path) -> None:
    """The six smallNORB .mat.gz files as downloaded, rows in a shuffled order."""
    rng = np.random.default_rng(0)
    sizes = [5, 10, 9, 18, 6]  # category, instance, elevation, azimuth / 2, lighting
    points = _grid(sizes, 0, int(np.prod(sizes)))
    tested = np.isin(points[:, 1], [0, 1, 2, 3, 5])  # the testing files' instances
    parts = {
        "smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat.gz": ~tested,
        "smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat.gz": tested,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for template, keep in parts.items():
        part = points[keep][rng.permutation(int(keep.sum()))]
        info = np.stack([part[:, 1], part[:, 2], 2 * part[:, 3], part[:, 4]], 1).astype("<i4")

        def pairs(part=part):
            for s in range(0, len(part), CHUNK // 4):
                one = _scenes(part[s : s + CHUNK // 4], sizes, side=96, channels=1)[..., 0]
                yield np.stack([one, one[:, :, ::-1]], axis=1)  # a stereo pair

        _norb(folder / template.format("dat"), 0x1E3D4C55, (len(part), 2, 96, 96), pairs())
        _norb(folder / template.format("cat"), 0x1E3D4C54, (len(part),), [part[:, 0]])
        _norb(folder / template.format("info"), 0x1E3D4C54, info.shape, [info])


def _norb(path: Path, magic: int, shape, chunks) -> None:
    dims = list(shape) + [1] * (3 - len(shape))
    dtype = np.uint8 if magic == 0x1E3D4C55 else np.dtype("<i4")
    with atomic_path(path) as tmp, gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(np.array([magic, len(shape), *dims], dtype="<i4").tobytes())
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def cars3d(folder: Path) -> None:
    """183 car_NNN_mesh.mat files (MATLAB v5, written by scipy) of ``im`` (128, 128, 3, 24, 4)."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    views = _grid([24, 4], 0, 96)  # azimuth, elevation
    for car in range(183):
        if (folder / f"car_{car:03d}_mesh.mat").exists():
            continue
        factors = np.column_stack([np.full(96, car), views])
        scenes = _scenes(factors, [183, 24, 4], side=128)  # [96, 128, 128, 3]
        im = scenes.reshape(24, 4, 128, 128, 3).transpose(2, 3, 4, 0, 1)
        with atomic_path(folder / f"car_{car:03d}_mesh.mat") as tmp:
            savemat(tmp, {"im": np.ascontiguousarray(im)})


def celeba(folder: Path) -> None:
    """img_align_celeba/ with 202,599 JPEGs of 178 x 218, the attribute and partition lists."""
    from PIL import Image

    n = 202_599
    rng = np.random.default_rng(0)
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    base = _scenes(_grid([16, 16], 0, 256), [16, 16], side=218)[:, :, 20:198]
    for i, name in enumerate(names):
        target = images / name
        if not target.exists():  # each image renamed into place (not synced: 202,599 of them)
            pixels = base[i % 256] ^ rng.integers(0, 8, (218, 178, 3), dtype=np.uint8)
            tmp = target.with_name(f".{name}.tmp")
            Image.fromarray(pixels).save(tmp, format="JPEG", quality=90)
            os.replace(tmp, target)
    attributes = rng.choice(np.array(["-1", " 1"]), size=(n, 40))
    names_line = " ".join(f"attribute_{k}" for k in range(40))
    lines = [str(n), names_line] + [
        f"{m} " + " ".join(row) for m, row in zip(names, attributes, strict=True)
    ]
    with atomic_path(folder / "list_attr_celeba.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    split = np.where(np.arange(n) < 162_770, 0, np.where(np.arange(n) < 182_637, 1, 2))
    with atomic_path(folder / "list_eval_partition.txt") as tmp:
        tmp.write_text("".join(f"{m} {s}\n" for m, s in zip(names, split, strict=True)))


def stl10(folder: Path) -> None:
    """stl10_binary/: unlabeled_X.bin (100,000), train (5,000) and test (8,000) with labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("unlabeled", 100_000), ("train", 5_000), ("test", 8_000)):
        with atomic_path(folder / f"{name}_X.bin") as tmp, open(tmp, "wb") as f:
            for s in range(0, n, CHUNK):
                index = np.arange(s, min(s + CHUNK, n))
                factors = np.stack([index % 100, index // 100 % 100], axis=1)
                pictures = _scenes(factors, [100, 100], side=96)  # [n, H, W, C]
                f.write(np.ascontiguousarray(pictures.transpose(0, 3, 2, 1)).tobytes())
        if name != "unlabeled":
            labels = (np.arange(n) % 10 + 1).astype(np.uint8)
            with atomic_path(folder / f"{name}_y.bin") as tmp:
                tmp.write_bytes(labels.tobytes())


# what the benchmark reads: name -> (file or folder under the files' folder, writer, spec)
LAYOUTS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "dsprites": ("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", dsprites, "dsprites:{}"),
    "3dshapes": ("3dshapes.h5", shapes3d, "3dshapes:{}"),
    "mpi3d": ("mpi3d_toy.npz", mpi3d, "mpi3d:{}"),
    "smallnorb": ("smallnorb", smallnorb, "smallnorb:{}"),
    "cars3d": ("cars", cars3d, "cars3d:{}"),
    "celeba": ("celeba", celeba, "celeba:{},label=attribute_31"),
    "stl10": ("stl10_binary", stl10, "stl10:{}"),
}
