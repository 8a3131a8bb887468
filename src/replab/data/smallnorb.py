"""The smallNORB release files: ``smallnorb:PATH`` (the folder of the six NYU files).

``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat`` and the ``5x01235 ... testing``
three (or the ``.mat.gz`` files as downloaded, decompressed once into the cache): binary
matrices, not MATLAB files despite the name. Each starts with an int32 magic (0x1E3D4C55: bytes;
0x1E3D4C54: int32), an int32 dimension count and max(3, ndim) int32 sizes, then little-endian
data. ``dat`` (24300, 2, 96, 96) holds a stereo pair per row, ``cat``
(24300,) the category, ``info`` (24300, 4) the instance, elevation, azimuth (0, 2, ..., 34) and
lighting. Rows are not in factor order: a table maps each point of the grid to its file and row.

As disentanglement_lib: the first camera's image, resized to 64x64 with Pillow's Lanczos filter,
azimuth halved. Its factors are category (5), elevation (9), azimuth (18) and lighting (6); the
instance (10 per category) is a factor here too, so every point is one image and observations
are a function of the factors (disentanglement_lib draws the instance at random instead). The
conventional split: the testing file's images (instances 0, 1, 2, 3, 5) are the test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replab.data.grid import StoredGrid, grid_rows
from replab.data.mapped import StackedRows, gunzipped, raw_block
from replab.data.readers import err, existing, need_dir, short
from replab.registry import register_dataset

FACTOR_NAMES = ["category", "instance", "elevation", "azimuth", "lighting"]
CATEGORIES = ["animal", "human", "airplane", "truck", "car"]
MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.dtype("<i4")}
PARTS = {
    "training": "smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat",
    "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat",
}


def read_matrix(path: Path) -> np.ndarray:
    """A smallNORB binary matrix, memory-mapped after its header is checked; the release's
    ``.mat.gz`` is read too (decompressed once into replab's cache)."""
    source = path
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
        source = gunzipped(path)
    try:
        if isinstance(source, bytes):
            head = source[:24]
        else:
            with open(source, "rb") as f:
                head = f.read(24)
    except OSError as e:
        raise err(path, f"cannot read ({short(e)})") from None
    if len(head) < 8:
        raise err(path, f"only {len(head)} bytes, too short for a smallNORB header")
    magic, ndim = np.frombuffer(head[:8], "<i4").tolist()
    if magic not in MAGIC:
        raise err(path, f"magic 0x{magic & 0xFFFFFFFF:08X} is not a smallNORB byte or int32 matrix")
    if not 1 <= ndim <= 4:
        raise err(path, f"declares {ndim} dimensions; smallNORB matrices have 1 to 4")
    n_sizes = max(3, ndim)
    if len(head) < 8 + 4 * n_sizes:
        raise err(path, "truncated header")
    dims = np.frombuffer(head[8 : 8 + 4 * n_sizes], "<i4")[:ndim]
    if (dims <= 0).any():
        raise err(path, f"declares an empty shape {dims.tolist()}")
    shape = tuple(int(d) for d in dims)
    return raw_block(source, 8 + 4 * n_sizes, MAGIC[magic], shape, name=path)


@register_dataset("smallnorb", takes_argument=True)
def smallnorb(arg: str) -> StoredGrid:
    """The smallNORB release (its folder of six files): 5 categories x 10 instances x 9 x 18 x 6."""
    folder = existing(arg, "smallnorb")
    need_dir(folder, "the six smallnorb-*.mat files")
    images, features, is_test = [], [], []
    for part, template in PARTS.items():
        paths = {kind: folder / template.format(kind) for kind in ("dat", "cat", "info")}
        missing = [p.name for p in paths.values() if not (p.is_file() or Path(f"{p}.gz").is_file())]
        if missing:
            raise err(folder, f"missing {', '.join(missing)}")
        dat, cat, info = (read_matrix(p) for p in paths.values())
        n = len(dat)
        if dat.dtype != np.uint8 or dat.ndim != 4 or dat.shape[1] != 2:
            raise err(
                paths["dat"], f"holds {dat.dtype} {list(dat.shape)}, expected uint8 [N, 2, H, W]"
            )
        if cat.shape != (n,) or info.shape != (n, 4):
            raise err(
                paths["info"],
                f"{list(cat.shape)} categories and {list(info.shape)} infos for {n} image pairs",
            )
        if info[:, 2].min() < 0 or (np.asarray(info[:, 2]) % 2).any():
            raise err(paths["info"], "azimuths must be 0, 2, 4, ... (the release's values)")
        features.append(np.column_stack([cat, info[:, 0], info[:, 1], info[:, 2] // 2, info[:, 3]]))
        images.append(dat[:, 0])  # the first camera, still mapped
        is_test.append(np.full(n, part == "testing"))
    factors = np.concatenate(features).astype(np.int64)
    if factors.min() < 0:
        raise err(folder, "negative categories or factor values")
    sizes = [int(s) for s in factors.max(0) + 1]
    rows, problem = grid_rows(factors, sizes, "image pairs")
    if problem is not None:
        raise err(folder, f"the two parts' images are {problem}")
    data = StoredGrid(
        "smallnorb",
        StackedRows(images),
        FACTOR_NAMES,
        sizes,
        label_factor="category",
        categorical=("category", "instance", "lighting"),
        circular=("azimuth",),  # 18 steps of 20 degrees: a full turn
        class_names=CATEGORIES[: sizes[0]],
        rows=rows,
        resize=64,
    )
    test = np.concatenate(is_test)
    data.test_mask = test if rows is None else test[rows]
    return data
