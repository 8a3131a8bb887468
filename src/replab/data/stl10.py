"""STL-10's binary release: ``stl10:PATH[,part=unlabeled|labelled]`` (the ``stl10_binary`` folder).

``unlabeled_X.bin`` (100,000 images) is for pretraining; ``train_X.bin``/``train_y.bin`` (5,000)
and ``test_X.bin``/``test_y.bin`` (8,000) are for the probes (``part=labelled``: the train files
are the train split, the test files the test split). Images are 3 x 96 x 96 uint8 stored
column-major, one channel after the other; labels are bytes 1..10. Every file is memory-mapped:
the 2.7 GB of unlabeled images are never read whole. Train on the unlabeled part, then evaluate
the run on the labelled one (``replab eval RUN --data stl10:PATH,part=labelled``): same shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from replab.data.base import DataInfo, Dataset
from replab.data.mapped import StackedRows, raw_block, read_rows
from replab.data.readers import err, existing, need_dir, parse_options
from replab.registry import register_dataset
from replab.specs import Option

OPTIONS = (Option("part", str, "unlabeled", choices=("unlabeled", "labelled")),)
IMAGE_BYTES = 3 * 96 * 96
CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def read_images(path: Path) -> np.ndarray:
    """A ``*_X.bin`` file, memory-mapped as [N, 3, 96 (columns), 96 (rows)] uint8."""
    if not path.is_file():
        raise err(path, "no such file")
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise err(
            path, f"{size} bytes is not a whole number of 3x96x96 images ({IMAGE_BYTES} each)"
        )
    return raw_block(path, 0, np.uint8, (size // IMAGE_BYTES, 3, 96, 96))


def read_labels(path: Path, n: int) -> np.ndarray:
    if not path.is_file():
        raise err(path, "no such file")
    labels = np.fromfile(path, dtype=np.uint8)
    if len(labels) != n:
        raise err(path, f"{len(labels)} labels for {n} images")
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise err(path, f"labels must be 1..10, found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64) - 1


class STL10(Dataset):
    """STL-10 images (and labels for the labelled part), memory-mapped."""

    def __init__(self, parts: list[np.ndarray], labels: np.ndarray | None, test_from: int | None):
        self.images = StackedRows(parts)
        self.labels = labels
        self.name = "stl10"
        self.class_names = CLASSES if labels is not None else None
        self.info = DataInfo(shape=(3, 96, 96), num_classes=10 if labels is not None else None)
        if test_from is not None:  # the test files' images follow the train files'
            self.test_mask = np.arange(len(self)) >= test_from

    def __len__(self) -> int:
        return self.images.shape[0]

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        x = read_rows(self.images, indices)
        # column-major on disk: swap to rows x columns
        out = {"x": torch.from_numpy(x.transpose(0, 1, 3, 2).astype(np.float32) / 255.0)}
        if self.labels is not None:
            out["y"] = torch.as_tensor(self.labels[indices])
        return out


@register_dataset("stl10", takes_argument=True)
def stl10(arg: str) -> STL10:
    """STL-10 (binary release): 100,000 unlabeled images, or the labelled train and test parts."""
    path, opts = parse_options(arg, "stl10", OPTIONS, example="stl10_binary")
    folder = existing(str(path), "stl10")
    need_dir(folder, "the stl10_binary files")
    if opts["part"] == "unlabeled":
        return STL10([read_images(folder / "unlabeled_X.bin")], None, None)
    train = read_images(folder / "train_X.bin")
    test = read_images(folder / "test_X.bin")
    labels = np.concatenate(
        [
            read_labels(folder / "train_y.bin", len(train)),
            read_labels(folder / "test_y.bin", len(test)),
        ]
    )
    return STL10([train, test], labels, test_from=len(train))
