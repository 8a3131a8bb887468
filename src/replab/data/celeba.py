"""CelebA's aligned faces: ``celeba:PATH[,label=Smiling][,size=64]``.

PATH is the release's folder: ``img_align_celeba/*.jpg`` (178 x 218 faces), ``list_attr_celeba.txt``
(the image count, the 40 attribute names, then one line per image of +1/-1 values) and
``list_eval_partition.txt`` (0 train, 1 validation, 2 test; replab trains on 0 and 1 and tests
on 2). The label is one binary attribute (``label=``, any of the 40: each is probeable by
evaluating with another). Images are decoded when a batch asks for them, cropped to their central
140 x 140 and resized to ``size`` (the usual preparation of CelebA at 64 x 64).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from replab.data.base import DataError, DataInfo, Dataset
from replab.data.readers import err, existing, need_dir, parse_options, short
from replab.registry import register_dataset
from replab.specs import Option

OPTIONS = (Option("label", str, "Smiling"), Option("size", int, 64, min=8))
CROP = 140


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(image names, attribute names, values int8 [N, 40] in {0, 1}) of list_attr_celeba.txt."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise err(path, f"cannot read ({short(e)})") from None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise err(path, "expected the image count on the first line")
    count, names = int(lines[0]), lines[1].split()
    body = [ln for ln in lines[2:] if ln.strip()]
    if len(body) != count:
        raise err(path, f"the first line promises {count} images, {len(body)} lines follow")
    images = []
    values = np.empty((count, len(names)), dtype=np.int8)
    for i, line in enumerate(body):  # row by row: 202,599 lists of 41 strings would take 400 MB
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise err(path, f"line {i + 3}: {len(fields) - 1} values for {len(names)} attributes")
        images.append(fields[0])
        try:
            values[i] = fields[1:]
        except ValueError:
            raise err(path, f"line {i + 3}: attribute values must be 1 or -1") from None
    if not np.isin(values, (-1, 1)).all():
        raise err(path, "attribute values must be 1 or -1")
    return images, names, (values > 0).astype(np.int8)


def read_partition(path: Path, images: list[str]) -> np.ndarray:
    """Whether each image is in the test partition (2)."""
    try:
        pairs = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise err(path, f"cannot read ({short(e)})") from None
    if any(len(p) != 2 or p[1] not in ("0", "1", "2") for p in pairs):
        raise err(path, "expected lines 'NAME.jpg 0|1|2'")
    part = dict(pairs)
    missing = [name for name in images if name not in part]
    if missing:
        raise err(path, f"no partition for {len(missing)} images, e.g. {missing[0]}")
    return np.array([part[name] == "2" for name in images])


class CelebA(Dataset):
    """Aligned CelebA faces with one attribute as the label, decoded batch by batch."""

    def __init__(self, folder: Path, label: str, size: int):
        images_dir = folder / "img_align_celeba"
        need_dir(images_dir, "the aligned .jpg images")
        names, attributes, values = read_attributes(folder / "list_attr_celeba.txt")
        if label not in attributes:
            raise DataError(
                f"celeba: label={label!r} is not an attribute; choose from {', '.join(attributes)}"
            )
        present = set(os.listdir(images_dir))
        missing = [n for n in names if n not in present]
        if missing:
            raise err(images_dir, f"{len(missing)} listed images are missing, e.g. {missing[0]}")
        self.name = "celeba"
        self.images_dir = images_dir
        self.image_names = names  # the paths are made when a batch reads them
        self.attributes = attributes
        self.values = values
        self.size = size
        self.label = attributes.index(label)
        self.class_names = [f"not {label}", label]
        self.info = DataInfo(shape=(3, size, size), num_classes=2)
        self.test_mask = read_partition(folder / "list_eval_partition.txt", names)

    def __len__(self) -> int:
        return len(self.image_names)

    def _image(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                left, top = (w - CROP) // 2, (h - CROP) // 2
                im = im.crop((left, top, left + CROP, top + CROP))
                return np.asarray(im.resize((self.size, self.size), Image.LANCZOS))
        except Exception as e:  # Pillow raises many kinds on a damaged file
            raise err(path, f"unreadable image ({short(e)})") from None

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices)
        x = np.stack([self._image(self.images_dir / self.image_names[i]) for i in indices])
        return {
            "x": torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0),
            "y": torch.as_tensor(self.values[indices, self.label], dtype=torch.long),
        }


@register_dataset("celeba", takes_argument=True)
def celeba(arg: str) -> CelebA:
    """CelebA's aligned faces, one of the 40 attributes as the label (label=Smiling)."""
    path, opts = parse_options(arg, "celeba", OPTIONS, example="celeba")
    folder = existing(str(path), "celeba")
    need_dir(folder, "img_align_celeba/ with list_attr_celeba.txt and list_eval_partition.txt")
    return CelebA(folder, opts["label"], opts["size"])
