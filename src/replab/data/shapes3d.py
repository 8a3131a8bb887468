"""The 3dshapes release file, read lazily from HDF5: ``3dshapes:PATH`` (``3dshapes.h5``).

``images`` (480000, 64, 64, 3) uint8 and ``labels`` (480000, 6) float64, the factor values:
floor hue (10), wall hue (10), object hue (10), scale (8), shape (4), orientation (15),
orientation fastest. The values are turned into indices (each column's sorted distinct values);
the rows must form the full grid, and where they are not in its order a table maps each point to
its row. No decoded copy of the 5.9 GB of images is held: stored contiguous, they are
memory-mapped where they lie; stored in compressed chunks (as the 255 MB download is), they are
decompressed once into replab's cache and mapped from there (``data.mapped.hdf5_rows``).
"""

from __future__ import annotations

import numpy as np

from replab.data.base import DataError
from replab.data.grid import HDF5_FAILURES, StoredGrid, grid_rows, value_indices
from replab.data.mapped import hdf5_rows
from replab.data.readers import err, existing, need_file, short
from replab.registry import register_dataset

FACTOR_NAMES = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
RELEASE_SIZES = [10, 10, 10, 8, 4, 15]


@register_dataset("3dshapes", takes_argument=True)
def shapes3d(arg: str) -> StoredGrid:
    """The 3dshapes release file (HDF5): 480,000 images over six factors, read lazily."""
    import h5py

    path = existing(arg, "3dshapes")
    need_file(path)
    try:
        f = h5py.File(path, "r")
    except HDF5_FAILURES as e:
        raise err(path, f"not a readable HDF5 file ({short(e)})") from None
    try:
        missing = [k for k in ("images", "labels") if k not in f]
        if missing:
            raise err(path, f"has no {missing[0]!r} dataset (it holds: {', '.join(f) or 'none'})")
        images, labels = f["images"], f["labels"]
        if not isinstance(images, h5py.Dataset) or not isinstance(labels, h5py.Dataset):
            raise err(path, "'images' and 'labels' must be datasets, not groups")
        n = images.shape[0] if images.ndim else 0
        if images.dtype != np.uint8 or images.shape[1:] != (64, 64, 3):
            raise err(
                path,
                f"'images' is {images.dtype} {list(images.shape)}, expected uint8 [N, 64, 64, 3]",
            )
        if labels.shape != (n, 6) or not np.issubdtype(labels.dtype, np.number):
            raise err(
                path, f"'labels' is {labels.dtype} {list(labels.shape)}, expected float [{n}, 6]"
            )
        values = labels[...]
        rows_of_images = hdf5_rows(path, images)
    except DataError:
        raise
    except HDF5_FAILURES as e:  # a damaged file can fail on inspection and read, not only on open
        raise err(path, f"unreadable HDF5 data ({short(e)})") from None
    if not np.isfinite(values).all():
        raise err(path, "'labels' holds NaN or inf")
    columns = [value_indices(values[:, j]) for j in range(6)]
    sizes = [len(distinct) for distinct, _ in columns]
    index = np.stack([idx for _, idx in columns], axis=1)
    rows, problem = grid_rows(index, sizes, "images")
    if problem is not None:
        raise err(path, f"'labels' is {problem}")
    return StoredGrid(
        "3dshapes",
        rows_of_images,
        FACTOR_NAMES,
        sizes,
        label_factor="shape",
        categorical=("shape",),
        rows=rows,
    )
