"""Ground-truth data read from a file that stores one image per point of its factor grid.

The release files of the disentanglement benchmarks (dSprites, 3dshapes, MPI3D, smallNORB,
Cars3D) all hold a factor grid's images; they differ in format, in factor order and in whether
their rows follow the grid. :class:`StoredGrid` serves any of them: images in an array that is
memory-mapped or an HDF5 dataset (read lazily, rows in increasing order), ``rows`` mapping each
grid index to its row when the file's order is another, and an optional per-batch ``resize``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from replab.data.base import DataError, DataInfo, GroundTruthDataset
from replab.data.mapped import read_rows

# What h5py raises on a damaged file: OSError for failed I/O and checksums, the others from its
# object-header and B-tree parsers, which meet a flipped byte before any read.
HDF5_FAILURES = (OSError, RuntimeError, KeyError, ValueError, TypeError)
# What a read of stored rows raises on a damaged file (memmaps and HDF5 datasets).
READ_FAILURES = (OSError, RuntimeError)


def grid_rows(
    factors: np.ndarray, sizes: list[int], what: str
) -> tuple[np.ndarray | None, str | None]:
    """The row of each grid index, given every row's factor indices [N, F]: None when the rows
    already are the grid in row-major order; a problem (one line) when they are not a full grid
    (a point missing or repeated)."""
    total = int(np.prod(sizes))
    if len(factors) != total:
        shape = "x".join(map(str, sizes))
        return None, f"not a full grid: {len(factors)} {what} where a {shape} grid has {total}"
    flat = np.ravel_multi_index(tuple(np.asarray(factors, dtype=np.int64).T), sizes)
    if np.array_equal(flat, np.arange(total)):
        return None, None
    seen = np.bincount(flat, minlength=total)
    if (seen != 1).any():
        missing = int((seen == 0).sum())
        return None, f"not a full grid: {missing} of its {total} points missing, some repeated"
    rows = np.empty(total, dtype=np.int64)
    rows[flat] = np.arange(total)
    return rows, None


def value_indices(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each entry's index among them) of one factor's column."""
    distinct, index = np.unique(values, return_inverse=True)
    return distinct, index.reshape(-1)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images [n, H, W] or [n, H, W, C] to ``size`` x ``size`` with Pillow's Lanczos
    filter (what disentanglement_lib's ``PIL.Image.ANTIALIAS`` is)."""
    out = np.empty((len(images), size, size, *images.shape[3:]), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))
    return out


class StoredGrid(GroundTruthDataset):
    """Images stored one per grid point: uint8 [N, H, W] or [N, H, W, C] in ``images``."""

    def __init__(
        self,
        name: str,
        images,
        factor_names: list[str],
        factor_sizes: list[int],
        *,
        label_factor: str,
        categorical: tuple[str, ...] = (),
        circular: tuple[str, ...] = (),
        class_names: list[str] | None = None,
        rows: np.ndarray | None = None,
        scale: float = 1.0 / 255.0,
        resize: int | None = None,
        transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        channels: int | None = None,
    ):
        self.name = name
        self.images = images
        self.factor_names = list(factor_names)
        self.factor_sizes = [int(s) for s in factor_sizes]
        self.label_factor = label_factor
        self.categorical_factors = tuple(categorical)
        self.circular_factors = tuple(circular)
        self.class_names = class_names
        self.rows = rows
        self.scale = scale
        self.resize = resize
        self.transform = transform
        side = resize or images.shape[1]
        c = channels or (images.shape[3] if len(images.shape) == 4 else 1)
        label_size = self.factor_sizes[self.factor_names.index(label_factor)]
        self.info = DataInfo(shape=(c, side, side), num_classes=label_size)

    def observations(self, factors) -> torch.Tensor:
        """Images float32 [n, C, H, W] in [0, 1] of factor indices [n, F]."""
        f = self.checked_factors(factors)
        index = self.factors_to_index(f)
        try:
            stored = read_rows(self.images, index if self.rows is None else self.rows[index])
        except READ_FAILURES as e:  # a damaged file found on read (HDF5 reads lazily)
            raise DataError(f"{self.name}: its file could not be read ({e})") from None
        if self.resize is not None and stored.shape[1] != self.resize:
            stored = resize_images(stored, self.resize)
        stored = stored[..., None] if stored.ndim == 3 else stored
        # one pass into one new array: scaled, cast and moved to [n, C, H, W] together
        x = np.empty((len(stored), stored.shape[3], *stored.shape[1:3]), dtype=np.float32)
        np.multiply(stored.transpose(0, 3, 1, 2), np.float32(self.scale), out=x)
        if self.transform is not None:
            x = self.transform(x, index)
        return torch.from_numpy(x)
