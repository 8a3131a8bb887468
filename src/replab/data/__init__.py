"""Data sets: procedural ones with ground-truth factors, bundled real ones, and file loaders.

Importing this package registers every data set; build one with ``make_dataset("sprites")`` or
``make_dataset("idx:/path/train-images-idx3-ubyte.gz")``. Adding a data set: a file here with
``@register_dataset`` on its factory or class (copy ``digits.py`` for data in memory,
``sprites.py`` for a procedural one with ground-truth factors, ``npz.py`` for a file format) and
its name in the import line below.
"""

from __future__ import annotations

from replab.data import (  # noqa: F401  (each import registers its data sets)
    bilingual,
    cars3d,
    celeba,
    cifar,
    corpus,
    digits,
    dsprites,
    folder,
    gt,
    idx,
    mpi3d,
    multi_sprites,
    npz,
    rooms,
    seek_avoid,
    shapes3d,
    smallnorb,
    speakers,
    sprites,
    stl10,
    tetrominoes,
    tones,
    video,
    wav,
)
from replab.data.base import (
    ArrayDataset,
    DataError,
    DataInfo,
    Dataset,
    GroundTruth,
    GroundTruthDataset,
    GroundTruthSubset,
    ObjectScenes,
    SceneFactors,
    Subset,
)
from replab.registry import DATASETS

__all__ = [
    "ArrayDataset",
    "DataError",
    "DataInfo",
    "Dataset",
    "GroundTruth",
    "GroundTruthDataset",
    "GroundTruthSubset",
    "ObjectScenes",
    "SceneFactors",
    "Subset",
    "dataset_names",
    "make_dataset",
    "parse_spec",
]


def dataset_names() -> list[str]:
    return sorted(DATASETS)


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
    """The data set ``spec`` names, built once (it remembers its ``spec``). A bad name or file
    is a one-line ValueError (``DataError`` for a file's problem)."""
    name, arg = parse_spec(spec)
    entry = DATASETS[name]
    data = entry.obj(arg) if entry.takes_argument else entry.obj()
    data.spec = spec
    return data
