"""The MPI3D release files: ``mpi3d:PATH`` (``mpi3d_toy.npz``, ``mpi3d_realistic.npz``,
``mpi3d_real.npz``).

One array, ``images`` (N, 64, 64, 3) uint8, and no labels: the factors follow from the order,
row-major over object colour, object shape, object size, camera height, background colour, and
the robot arm's horizontal and vertical axes (the last fastest). N gives the sizes: 1,036,800
for the current files ([6, 6, 2, 3, 3, 40, 40]) and 460,800 for the first ones ([4, 4, 2, 3, 3,
40, 40]); any other N is refused. The images are memory-mapped where they lie in the file (the
release stores them uncompressed), so the 12.7 GB is never copied.
"""

from __future__ import annotations

from replab.data.grid import StoredGrid
from replab.data.mapped import npz_keys, npz_member
from replab.data.readers import err, existing, need_file
from replab.registry import register_dataset

FACTOR_NAMES = [
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
]
# images in a file -> the sizes of its grid
SIZES_BY_COUNT = {
    1_036_800: [6, 6, 2, 3, 3, 40, 40],
    460_800: [4, 4, 2, 3, 3, 40, 40],
}


@register_dataset("mpi3d", takes_argument=True)
def mpi3d(arg: str) -> StoredGrid:
    """An MPI3D release file (npz): the factor grid follows from the number of images."""
    path = existing(arg, "mpi3d")
    need_file(path)
    if "images" not in npz_keys(path):
        raise err(path, f"has no 'images' array (it holds: {', '.join(npz_keys(path)) or 'none'})")
    images = npz_member(path, "images")
    if images.dtype.name != "uint8" or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise err(
            path, f"'images' is {images.dtype} {list(images.shape)}, expected uint8 [N, 64, 64, 3]"
        )
    sizes = SIZES_BY_COUNT.get(images.shape[0])
    if sizes is None:
        known = " or ".join(f"{n:,}" for n in SIZES_BY_COUNT)
        raise err(
            path, f"holds {images.shape[0]:,} images; MPI3D files hold {known} (a full grid each)"
        )
    return StoredGrid(
        "mpi3d",
        images,
        FACTOR_NAMES,
        sizes,
        label_factor="object_shape",
        categorical=("object_color", "object_shape", "background_color"),
    )
