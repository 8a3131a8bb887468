"""The Cars3D release: ``cars3d:PATH`` (the folder of ``car_*_mesh.mat`` files).

Each MATLAB file holds ``im`` (128, 128, 3, 24, 4) uint8: one car model seen from 24 azimuths and
4 elevations. As disentanglement_lib, each image is shrunk to 64x64 (Pillow's ``thumbnail`` with
its Lanczos filter) and the factors are elevation (4), azimuth (24) and object (183, the files in
name order). The shrunk images (216 MB) are computed once into replab's cache, keyed by the
files' names, sizes and modification times, and memory-mapped in later runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from replab.data.grid import StoredGrid
from replab.data.mapped import copy_into_cache, file_key
from replab.data.matfile import read_mat_array
from replab.data.readers import err, existing, need_dir
from replab.registry import register_dataset

FACTOR_NAMES = ["elevation", "azimuth", "object"]
MESH_SHAPE = (128, 128, 3, 24, 4)


def read_mesh(path: Path) -> np.ndarray:
    """One file's images shrunk to 64x64: uint8 [4 elevations, 24 azimuths, 64, 64, 3]."""
    im = read_mat_array(path, "im")
    if im.dtype != np.uint8 or im.shape != MESH_SHAPE:
        raise err(path, f"'im' is {im.dtype} {list(im.shape)}, expected uint8 {list(MESH_SHAPE)}")
    out = np.empty((4, 24, 64, 64, 3), dtype=np.uint8)
    for az in range(24):
        for el in range(4):
            pic = Image.fromarray(np.ascontiguousarray(im[:, :, :, az, el]))
            pic.thumbnail((64, 64), Image.LANCZOS)
            out[el, az] = np.asarray(pic)
    return out


def _shrunk(files: list[Path]) -> np.ndarray:
    """uint8 [4 * 24 * n, 64, 64, 3] in grid order (elevation, azimuth, object)."""
    meshes = np.stack([read_mesh(p) for p in files], axis=2)  # [4, 24, n, 64, 64, 3]
    return meshes.reshape(-1, 64, 64, 3)


@register_dataset("cars3d", takes_argument=True)
def cars3d(arg: str) -> StoredGrid:
    """The Cars3D release (its folder of car_*_mesh.mat files): 4 x 24 views of 183 cars."""
    folder = existing(arg, "cars3d")
    need_dir(folder, "the car_*_mesh.mat files")
    files = sorted(folder.glob("car_*_mesh.mat"))
    if not files:
        raise err(folder, "holds no car_*_mesh.mat files")
    name = f"arrays/cars3d-{file_key(files)}.npy"
    cached = copy_into_cache(name, lambda tmp: _save(tmp, files))
    images = _shrunk(files) if cached is None else np.load(cached, mmap_mode="r")
    return StoredGrid(
        "cars3d",
        images,
        FACTOR_NAMES,
        [4, 24, len(files)],
        label_factor="object",
        categorical=("object",),
    )


def _save(tmp: Path, files: list[Path]) -> None:
    with open(tmp, "wb") as f:
        np.save(f, _shrunk(files))
