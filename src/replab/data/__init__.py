"""Data sets: procedural ones with ground-truth factors, bundled real ones, and file loaders.

``make_dataset("sprites")`` or ``make_dataset("idx:/path/train-images-idx3-ubyte.gz")``.
"""

from __future__ import annotations

from replab.data import (  # noqa: F401  (registers the data sets)  # noqa: F401
    audio,
    files,
    sprites,
    text,  # noqa: F401
    toy,
    video,
)
from replab.data.base import (
    ArrayDataset,
    DataError,
    DataInfo,
    Dataset,
    GroundTruthDataset,
    Subset,
)
from replab.registry import DATASETS

__all__ = [
    "ArrayDataset",
    "DataError",
    "DataInfo",
    "Dataset",
    "GroundTruthDataset",
    "Subset",
    "make_dataset",
    "parse_spec",
]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``name:argument`` and check the name; raise ValueError naming the valid choices."""
    if not isinstance(spec, str) or not spec:
        raise ValueError("data set must be a non-empty name, e.g. 'sprites' or 'idx:PATH'")
    name, sep, arg = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None:
        choices = ", ".join(
            f"{n}:PATH" if e.takes_argument else n for n, e in sorted(DATASETS.items())
        )
        raise ValueError(f"unknown data set {name!r}; choose from: {choices}")
    if entry.takes_argument and not arg:
        raise ValueError(f"data set {name!r} needs a path: '{name}:PATH'")
    if not entry.takes_argument and sep:
        raise ValueError(f"data set {name!r} takes no argument, got {spec!r}")
    return name, (arg or None)


def make_dataset(spec: str) -> Dataset:
    name, arg = parse_spec(spec)
    entry = DATASETS[name]
    return entry.obj(arg) if entry.takes_argument else entry.obj()
