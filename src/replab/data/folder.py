"""An image folder with one sub-folder per class, read by Pillow: ``folder:PATH``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replab.data.base import ArrayDataset, DataError
from replab.data.readers import err, existing, is_image_file, need_dir, short
from replab.registry import register_dataset

_GREY_MODES = {"1", "L", "LA", "La"}
_COLOUR_MODES = {"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


@register_dataset("folder", takes_argument=True)
def folder(arg: str) -> ArrayDataset:
    """An image folder with one sub-folder per class (all images the same size; read by Pillow)."""
    root = existing(arg, "folder")
    need_dir(root, "one sub-folder of images per class")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError("folder: reading images needs Pillow (pip install pillow)") from None
    classes = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not classes:
        loose = sum(1 for p in root.iterdir() if is_image_file(p))
        hint = f" (it holds {loose} images directly; put them in class sub-folders)"
        hint = hint if loose else ""
        raise err(root, f"no class sub-folders{hint}")
    files: list[tuple[Path, int]] = []
    for label, d in enumerate(classes):
        images = sorted((p for p in d.iterdir() if is_image_file(p)), key=lambda p: p.name)
        if not images:
            raise err(d, "class folder holds no images")
        files.extend((p, label) for p in images)

    # Pass 1: headers only (cheap): readable, supported mode, one size.
    modes = []
    first: tuple[Path, tuple[int, int]] | None = None
    for p, _ in files:
        try:
            with Image.open(p) as im:
                size, mode = im.size, im.mode
        except Exception as exc:  # Pillow raises many kinds on a bad file
            raise err(p, f"unreadable image ({short(exc)})") from None
        if mode not in _GREY_MODES and mode not in _COLOUR_MODES:
            raise err(p, f"image mode {mode} (e.g. 16-bit or float) is not supported; use 8-bit")
        if first is None:
            first = (p, size)
        elif size != first[1]:
            raise err(
                p,
                f"size {size[0]}x{size[1]} (WxH) differs from {first[1][0]}x{first[1][1]} of "
                f"{first[0]}; all images must have the same size",
            )
        modes.append(mode)

    # Pass 2: decode, converted to L if every image is grey, else RGB.
    target = "L" if all(m in _GREY_MODES for m in modes) else "RGB"
    w, h = first[1]
    channels = 1 if target == "L" else 3
    x = np.empty((len(files), channels, h, w), dtype=np.uint8)
    for i, (p, _) in enumerate(files):
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert(target))
        except Exception as exc:
            raise err(p, f"unreadable image ({short(exc)})") from None
        if arr.shape[:2] != (h, w):
            raise err(p, f"decoded to {arr.shape[1]}x{arr.shape[0]}, expected {w}x{h}")
        x[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    y = np.array([label for _, label in files], dtype=np.int64)
    return ArrayDataset(x, y, name=f"folder:{root.name}", class_names=[d.name for d in classes])
