"""The dSprites release file: ``dsprites:PATH[,variant=plain|color|noisy|scream][,scream=IMAGE]``.

``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` holds ``imgs`` (737280, 64, 64) uint8 in
{0, 1}, ``latents_classes`` (737280, 6) int64 and ``latents_values`` float64, row-major over
colour (1), shape (3), scale (6), orientation (40), posX (32), posY (32), posY fastest. Its
``metadata`` entry is a pickle and is never opened: the factors are known, and
``latents_classes`` confirms their sizes and order (a smaller grid in the same layout is read the
same way). The images are memory-mapped (``data.mapped``): the compressed release file is
decompressed once into replab's cache.

The five factors are those of replab's ``sprites`` (colour, of size 1, is left out), so every
metric reads them alike. ``variant`` gives disentanglement_lib's colour, noisy and scream
versions over the real images; their randomness is a fixed function of the image's grid index, as
in ``sprites``, and ``scream`` needs the Scream image the user supplies (``scream=PATH``).
``check_renderer`` compares replab's procedural ``sprites`` with the file, pixel by pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from replab.data.base import DataError
from replab.data.grid import StoredGrid, grid_rows
from replab.data.mapped import npz_keys, npz_member, read_rows
from replab.data.readers import err, existing, need_file, parse_options
from replab.data.sprites import (
    FACTOR_NAMES,
    SHAPE_NAMES,
    colour_sprites,
    hashed_uniform,
    noisy_sprites,
    render_np,
)
from replab.registry import register_dataset
from replab.specs import Option

FILE_FACTORS = ["color", *FACTOR_NAMES]
RELEASE_SIZES = [1, 3, 6, 40, 32, 32]
OPTIONS = (
    Option("variant", str, "plain", choices=("plain", "color", "noisy", "scream")),
    Option("scream"),
)
_SCREAM_STREAM = 3
SCREAM_THUMBNAIL = (350, 274)  # disentanglement_lib shrinks the painting to fit this box


def read_release(path) -> tuple[np.ndarray, list[int]]:
    """(imgs memory-mapped [N, 64, 64] uint8, the grid's sizes without colour) of the file."""
    path = existing(str(path), "dsprites")
    need_file(path)
    keys = npz_keys(path)
    for key in ("imgs", "latents_classes"):
        if key not in keys:
            raise err(path, f"has no {key!r} array (it holds: {', '.join(keys) or 'none'})")
    classes = np.asarray(npz_member(path, "latents_classes"))
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
        raise err(
            path, f"'latents_classes' is {classes.dtype} {list(classes.shape)}, expected int [N, 6]"
        )
    if len(classes) == 0 or classes.min() < 0:
        raise err(path, "'latents_classes' is empty or holds negative classes")
    sizes = [int(s) for s in classes.max(0) + 1]
    if sizes[0] != 1:
        raise err(path, f"'latents_classes' has {sizes[0]} colours; dSprites has 1")
    rows, problem = grid_rows(classes, sizes, "rows")
    if problem is not None or rows is not None:
        why = problem or "not in the release's order (posY fastest)"
        raise err(path, f"'latents_classes' is {why}")
    imgs = npz_member(path, "imgs")
    if imgs.dtype != np.uint8 or imgs.shape != (len(classes), 64, 64):
        raise err(
            path,
            f"'imgs' is {imgs.dtype} {list(imgs.shape)}, expected uint8 [{len(classes)}, 64, 64]",
        )
    return imgs, sizes[1:]


def _scream_background(path: str) -> np.ndarray:
    """The painting as float32 [H, W, 3] in [0, 1], shrunk as disentanglement_lib shrinks it."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail(SCREAM_THUMBNAIL)
            scream = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable image for scream= ({e})") from None
    if scream.shape[0] <= 64 or scream.shape[1] <= 64:
        raise DataError(f"{path}: the scream image must be larger than 64x64 once shrunk")
    return scream


def scream_sprites(binary: np.ndarray, flat_index: np.ndarray, scream: np.ndarray) -> np.ndarray:
    """disentanglement_lib's ScreamDSprites: a 64x64 patch of the painting, averaged with a
    random colour, the sprite's pixels inverted; patch and colour from the grid index."""
    n = len(binary)
    u = hashed_uniform(flat_index, _SCREAM_STREAM, 5)
    top = (u[:, 0] * (scream.shape[0] - 64)).astype(np.int64)
    left = (u[:, 1] * (scream.shape[1] - 64)).astype(np.int64)
    out = np.empty((n, 3, 64, 64), dtype=np.float32)
    for i in range(n):
        patch = scream[top[i] : top[i] + 64, left[i] : left[i] + 64]
        background = ((patch + u[i, 2:]) / 2.0).transpose(2, 0, 1)
        out[i] = np.where(binary[i] == 1, 1.0 - background, background)
    return out


@register_dataset("dsprites", takes_argument=True)
def dsprites_file(arg: str) -> StoredGrid:
    """The dSprites release file (npz); disentanglement_lib's colour, noisy and scream variants."""
    path, opts = parse_options(arg, "dsprites", OPTIONS, example="dsprites_ndarray.npz")
    imgs, sizes = read_release(path)
    variant = opts["variant"]
    transform, channels = None, 1
    if variant == "color":
        transform, channels = colour_sprites, 3
    elif variant == "noisy":
        transform, channels = noisy_sprites, 3
    elif variant == "scream":
        if "scream" not in opts:
            raise DataError("dsprites: variant=scream needs the painting: scream=PATH")
        scream = _scream_background(opts["scream"])

        def transform(x, index):
            return scream_sprites(x, index, scream)

        channels = 3
    elif "scream" in opts:
        raise DataError("dsprites: scream= goes with variant=scream")
    name = "dsprites" if variant == "plain" else f"dsprites ({variant})"
    return StoredGrid(
        name,
        imgs,
        FACTOR_NAMES,
        sizes,
        label_factor="shape",
        categorical=("shape",),
        circular=("orientation",),
        class_names=SHAPE_NAMES[: sizes[0]],
        scale=1.0,
        transform=transform,
        channels=channels,
    )


def check_renderer(
    imgs, sizes: list[int], sample: int | None = None, seed: int = 0, chunk: int = 8192, log=None
) -> dict:
    """How closely replab's ``sprites`` renderer matches the release's images ``imgs`` (the
    file's ``imgs``, in grid order; ``sizes`` its grid): the share of identical pixels, of
    identical images, and per factor the value whose images differ most often. ``sample``
    compares that many grid points drawn at random instead of all 737,280."""
    if list(sizes) != RELEASE_SIZES[1:]:
        raise DataError(f"a full dSprites grid is {RELEASE_SIZES[1:]}, the file's is {sizes}")
    total = int(np.prod(sizes))
    if sample is None or sample >= total:
        index = np.arange(total)
    else:
        index = np.sort(np.random.default_rng(seed).choice(total, size=sample, replace=False))
    same_pixels = 0
    differs = np.zeros(len(index), dtype=bool)
    for start in range(0, len(index), chunk):
        part = index[start : start + chunk]
        ours = render_np(np.stack(np.unravel_index(part, sizes), axis=1))[:, 0] > 0.5
        theirs = np.asarray(read_rows(imgs, part)) > 0
        equal = ours == theirs
        same_pixels += int(equal.sum())
        differs[start : start + len(part)] = ~equal.all(axis=(1, 2))
        if log is not None and (start // chunk) % 16 == 0:
            log(f"compared {start + len(part):,} of {len(index):,} images")
    factors = np.stack(np.unravel_index(index, sizes), axis=1)
    by_factor = {}
    for j, name in enumerate(FACTOR_NAMES):
        shares = [float(differs[factors[:, j] == v].mean()) for v in range(sizes[j])]
        worst = int(np.argmax(shares))
        by_factor[name] = {"worst_value": worst, "images_differing": shares[worst]}
    return {
        "images": len(index),
        "identical_pixels": same_pixels / (len(index) * 64 * 64),
        "identical_images": float(1.0 - differs.mean()),
        "by_factor": by_factor,
    }
