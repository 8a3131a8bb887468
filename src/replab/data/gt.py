"""A user's own ground-truth data: ``gt:PATH[,label=NAME][,categorical=a|b][,circular=c|d]``.

PATH is either an ``.npz`` holding ``images`` ([N, H, W], [N, H, W, C] or [N, C, H, W], uint8 or
float in [0, 1]), ``factors`` ([N, F], one column per factor) and, optionally, ``factor_names``
([F] strings) and ``categorical`` (names of the factors without an order); or a folder of images
with a ``factors.csv`` whose header is ``file,NAME,NAME,...`` and whose rows name an image file
and its factor values. A factor's values may be numbers or words: its indices follow their sorted
order (numeric where every value is a number).

When every combination of the factors occurs exactly once, the data is a full grid and every
metric runs. Otherwise it is a set of points: the metrics that need to vary one factor with the
others fixed at values of their choosing (the BetaVAE and FactorVAE scores, symmetry) are skipped
with a note, and the others (MIG, DCI, SAP, modularity, explicitness, factor probes) run on the
points there are. The label is ``label=NAME`` (default: the first categorical factor, else the
first factor). ``circular=NAME|...`` names ordered factors whose values wrap around (an angle over
a full turn): the generalisation part's composition and extrapolation splits do not cut them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from replab.data.base import DataError, DataInfo, Dataset, GroundTruth, GroundTruthSubset
from replab.data.grid import StoredGrid, grid_rows
from replab.data.npz import image_array
from replab.data.readers import (
    NUMPY_FILE_FAILURES,
    err,
    existing,
    is_image_file,
    parse_options,
    short,
)
from replab.registry import register_dataset
from replab.specs import Option

OPTIONS = (Option("label"), Option("categorical"), Option("circular"))


def column_indices(values: list | np.ndarray, path: Path, name: str) -> np.ndarray:
    """Each value's index among the column's sorted distinct values (numbers by value)."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise err(path, f"factor {name!r} holds NaN or inf")
        return np.unique(values, return_inverse=True)[1].reshape(-1)
    text = [str(v) for v in values.tolist()]
    try:
        numbers = np.array([float(v) for v in text])
    except ValueError:
        return np.unique(np.array(text), return_inverse=True)[1].reshape(-1)
    return np.unique(numbers, return_inverse=True)[1].reshape(-1)


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            for key in ("images", "factors"):
                if key not in keys:
                    raise err(path, f"has no {key!r} array (it holds: {', '.join(keys) or 'none'})")
            images = image_array(z["images"], path, "images")
            raw = z["factors"]
            names = [str(n) for n in z["factor_names"].tolist()] if "factor_names" in keys else []
            categorical = (
                [str(n) for n in z["categorical"].tolist()] if "categorical" in keys else []
            )
    except DataError:
        raise
    except NUMPY_FILE_FAILURES as e:
        raise err(path, f"not a readable .npz of ground truth ({short(e)})") from None
    if raw.ndim != 2 or len(raw) != len(images):
        raise err(path, f"'factors' is {list(raw.shape)}, expected [{len(images)}, F]")
    names = names or [f"factor_{j}" for j in range(raw.shape[1])]
    if len(names) != raw.shape[1]:
        raise err(path, f"{len(names)} factor names for {raw.shape[1]} factor columns")
    factors = np.stack([column_indices(raw[:, j], path, n) for j, n in enumerate(names)], 1)
    return images, factors, names, categorical


def _from_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    table = folder / "factors.csv"
    if not table.is_file():
        raise err(folder, "holds no factors.csv (a header 'file,NAME,...' and a row per image)")
    try:
        with open(table, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise err(table, f"not a readable CSV file ({short(e)})") from None
    if len(rows) < 2 or len(rows[0]) < 2 or rows[0][0].strip() != "file":
        raise err(table, "expected a header 'file,NAME,...' and at least one row")
    names = [n.strip() for n in rows[0][1:]]
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    bad = next((i for i, r in enumerate(body) if len(r) != len(names) + 1), None)
    if bad is not None:
        raise err(table, f"row {bad + 2} has {len(body[bad])} fields, the header {len(names) + 1}")
    empty = next((i for i, r in enumerate(body) if not all(c.strip() for c in r)), None)
    if empty is not None:
        raise err(table, f"row {empty + 2} has an empty field")
    listed = [r[0].strip() for r in body]
    named = set(listed)
    if len(named) != len(listed):
        twice = next(n for n in listed if listed.count(n) > 1)
        raise err(table, f"{twice!r} is listed more than once")
    # an image the table does not list is most often a table cut short: refuse rather than guess
    unlisted = sorted(p.name for p in folder.iterdir() if is_image_file(p) and p.name not in named)
    if unlisted:
        raise err(
            table,
            f"does not list {len(unlisted)} image(s) of the folder (first: {unlisted[0]}); "
            "list every image or move the others out",
        )
    images = []
    for r in body:
        p = folder / r[0].strip()
        try:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB" if im.mode not in ("L", "1") else "L")))
        except Exception as e:  # Pillow raises many kinds on a damaged file
            raise err(p, f"unreadable image ({short(e)})") from None
    if len({im.shape for im in images}) != 1:
        raise err(folder, "the images differ in size or channels; they must all be alike")
    factors = np.stack(
        [column_indices([r[j + 1].strip() for r in body], table, n) for j, n in enumerate(names)],
        1,
    )
    return image_array(np.stack(images), table, "images"), factors, names, []


class PointSet(GroundTruth, Dataset):
    """Points of a factor grid that is not full: each example is one point, with its image."""

    full_grid = False

    def __init__(self, name, images, factors, names, sizes, label, categorical, circular=()):
        self.name = name
        self.images = images  # [N, C, H, W], uint8 or float
        self.factors = factors
        self.factor_names, self.factor_sizes = names, sizes
        self.label_factor, self.categorical_factors = label, tuple(categorical)
        self.circular_factors = tuple(circular)
        flat = np.ravel_multi_index(tuple(factors.T), sizes)
        self._order = np.argsort(flat, kind="stable")
        self._flat = flat[self._order]
        scale = 1.0 / 255.0 if images.dtype == np.uint8 else 1.0
        self._scale = np.float32(scale)
        self.info = DataInfo(shape=tuple(images.shape[1:]), num_classes=sizes[names.index(label)])

    def __len__(self) -> int:
        return len(self.factors)

    def factors_of(self, indices: np.ndarray) -> np.ndarray:
        return self.factors[np.asarray(indices)]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.factors[rng.integers(0, len(self.factors), size=n)]

    def observations(self, factors) -> torch.Tensor:
        f = self.checked_factors(factors)
        flat = np.ravel_multi_index(tuple(f.T), self.factor_sizes)
        pos = np.clip(np.searchsorted(self._flat, flat), 0, len(self._flat) - 1)
        if not (self._flat[pos] == flat).all():
            raise ValueError(
                f"{self.name}: some factor combinations are not among the data's points"
            )
        return self._images(self._order[pos])

    def _images(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.images[rows].astype(np.float32) * self._scale)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices)
        f = self.factors[indices]
        return {
            "x": self._images(indices),
            "y": torch.as_tensor(f[:, self.factor_names.index(self.label_factor)]),
            "factors": torch.as_tensor(f),
        }

    def subset(self, indices: np.ndarray) -> GroundTruthSubset:
        return GroundTruthSubset(self, indices)


@register_dataset("gt", takes_argument=True)
def ground_truth(arg: str) -> GroundTruth:
    """Your own images with their ground-truth factors: an npz, or a folder with factors.csv."""
    path, opts = parse_options(arg, "gt", OPTIONS, example="mine.npz")
    path = existing(str(path), "gt")
    if path.is_dir():
        images, factors, names, categorical = _from_folder(path)
    else:
        images, factors, names, categorical = _from_npz(path)
    if len(set(names)) != len(names):
        raise err(path, f"factor names repeat: {names}")
    if "categorical" in opts:
        categorical = [n for n in opts["categorical"].split("|") if n]
    unknown = [n for n in categorical if n not in names]
    if unknown:
        raise DataError(f"gt: categorical names {unknown} are not factors ({', '.join(names)})")
    circular = [n for n in opts.get("circular", "").split("|") if n]
    wrong = [n for n in circular if n not in names or n in categorical]
    if wrong:
        raise DataError(f"gt: circular names {wrong} are not ordinal factors ({', '.join(names)})")
    label = opts.get("label") or (categorical[0] if categorical else names[0])
    if label not in names:
        raise DataError(f"gt: label={label!r} is not a factor ({', '.join(names)})")
    sizes = [int(s) for s in factors.max(0) + 1]
    rows, problem = grid_rows(factors, sizes, "images")
    name = f"gt:{path.name}"
    if problem is None:  # a full grid: stored one image per point, as the release files are
        grid_images = images.transpose(0, 2, 3, 1)
        if grid_images.shape[-1] == 1:
            grid_images = grid_images[..., 0]
        scale = 1.0 / 255.0 if images.dtype == np.uint8 else 1.0
        return StoredGrid(
            name, grid_images, names, sizes, label_factor=label, categorical=categorical,
            circular=tuple(circular), rows=rows, scale=scale,
        )  # fmt: skip
    return PointSet(name, images, factors, names, sizes, label, categorical, circular)
