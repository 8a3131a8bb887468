"""The data interface every method and metric relies on.

A data set is indexable by *batches*: ``get_batch(indices)`` returns a dict of tensors
(``"x"`` float32 [n, C, H, W] in [0, 1] for images, ``"y"`` int64 [n] when there is a label,
``"factors"`` int64 [n, F] when there are ground-truth factors). Batched access keeps procedural
data (rendered on the fly) and in-memory arrays equally fast and avoids per-item collation.

Ground-truth data (``GroundTruth``: a whole factor grid, ``GroundTruthDataset``, or part of one,
``GroundTruthSubset``) add the interface of disentanglement_lib: ``factor_names``,
``factor_sizes``, ``sample_factors(n, rng)`` and ``observations(factors)``. Code that needs it
asks ``isinstance(data, GroundTruth)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """Bad or unreadable input data. The message names the file and what was wrong."""


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know to build itself for a data set."""

    shape: tuple[int, ...]  # one observation, e.g. (1, 64, 64)
    num_classes: int | None = None  # of "y", when there is a label
    kind: str = "image"  # "image" (float in [0, 1]), "tokens" (int64 ids), "audio", "video",
    # or "views" (posed views of one scene: "x" [V, C, H, W] and "pose" [V, 7])
    vocab_size: int | None = None
    # Tokens: how often each id occurs in the training split (unigram statistics a method may
    # need, e.g. word2vec's sub-sampling and negatives); id 0 is padding.
    token_counts: tuple[int, ...] | None = None

    def __post_init__(self):
        # data.json stores lists; keep the frozen dataclass hashable and equal either way
        object.__setattr__(self, "shape", tuple(self.shape))
        if self.token_counts is not None:
            object.__setattr__(self, "token_counts", tuple(int(c) for c in self.token_counts))


class Dataset(ABC):
    """Base class: a finite, indexable collection served in batches."""

    name: str = "dataset"
    # The spec it was built from (``make_dataset`` sets it), or None for one built in Python.
    spec: str | None = None
    info: DataInfo
    # The class names of "y", in order, when known (shown in reports).
    class_names: list[str] | None = None

    @abstractmethod
    def __len__(self) -> int:
        """Number of examples."""

    @abstractmethod
    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """The examples at ``indices`` as a dict of batched tensors."""

    def get_batch_on(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """The batch at ``indices`` on ``device``. A data set that can make its examples there
        (procedural images rendered by the accelerator rather than by two CPU cores and then
        copied) overrides this; by default they are made on the CPU and moved."""
        return {k: v.to(device, non_blocking=True) for k, v in self.get_batch(indices).items()}

    def checked_indices(self, indices) -> np.ndarray:
        """``indices`` as int64 [n]; a one-line IndexError naming the first one outside the
        data (a procedural set draws each example from its index, so any int would do)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        outside = idx[(idx < 0) | (idx >= len(self))]
        if len(outside):
            raise IndexError(f"{self.name} has {len(self)} examples; got index {outside[0]}")
        return idx

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.get_batch(np.asarray([i]))
        return {k: v[0] for k, v in batch.items()}

    # The protocol's "raw input" baseline: its name in eval.json and the features it uses.
    raw_baseline_name: str = "pixels"

    def raw_features(self, x: torch.Tensor) -> np.ndarray:
        """Features of the raw-input baseline for a batch of inputs: flattened by default; text
        data override it with a bag of words, audio with a time-averaged log-mel spectrogram."""
        return x.flatten(1).float().numpy()

    def save_artifacts(self, run_dir: Path) -> None:
        """Write what a trained model needs beside its weights to be used without the data
        (a text data set's tokeniser); the training loop calls it once. Default: nothing."""
        return None

    @property
    def has_labels(self) -> bool:
        return self.info.num_classes is not None

    # A conventional test split (files shipped as train and test): True where an example is in
    # the test part. None: ``split`` draws a fixed random part.
    test_mask: np.ndarray | None = None

    def split(self, which: str, test_fraction: float = 0.1) -> Subset:
        """Deterministic train/test split: ``test_mask`` where the data has one, else a fixed
        permutation (seed 0) of the indices with ``test_fraction`` of them for the test."""
        if which not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {which!r}")
        n = len(self)
        if which == "all":
            return self.subset(np.arange(n))
        if self.test_mask is not None:
            return self.subset(
                np.flatnonzero(self.test_mask if which == "test" else ~self.test_mask)
            )
        perm = np.random.default_rng(0).permutation(n)
        n_test = max(1, int(round(n * test_fraction)))
        idx = perm[:n_test] if which == "test" else perm[n_test:]
        return self.subset(np.sort(idx))

    def subset(self, indices: np.ndarray) -> Subset:
        """The examples at ``indices`` as a data set of their own (a ``GroundTruthSubset`` of
        ground-truth data)."""
        return Subset(self, indices)


class Subset(Dataset):
    """A view on a subset of another data set's indices; the rest of the data set's interface
    (its raw-input baseline, its artifacts) is the parent's."""

    def __init__(self, parent: Dataset, indices: np.ndarray):
        self.parent = parent
        self.indices = np.asarray(indices, dtype=np.int64)
        self.name = parent.name
        self.spec = parent.spec
        self.info = parent.info
        self.class_names = parent.class_names
        self.raw_baseline_name = parent.raw_baseline_name

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return self.parent.get_batch(self.indices[np.asarray(indices)])

    def get_batch_on(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        return self.parent.get_batch_on(self.indices[np.asarray(indices)], device)

    def raw_features(self, x: torch.Tensor) -> np.ndarray:
        return self.parent.raw_features(x)

    def split(self, which: str, test_fraction: float = 0.1) -> Subset:
        raise TypeError("split a full data set, not a subset")

    def subset(self, indices: np.ndarray) -> Subset:
        return self.parent.subset(self.indices[np.asarray(indices)])

    def save_artifacts(self, run_dir: Path) -> None:
        self.parent.save_artifacts(run_dir)


class InMemoryDataset(Dataset):
    """Tensors ``self.x`` (and ``self.y``) held in memory, with an optional conventional test
    split as a boolean mask ``self.test_mask``: the shared part of arrays, audio and text."""

    x: torch.Tensor
    y: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        out = {"x": self.x[idx]}
        if self.y is not None:
            out["y"] = self.y[idx]
        return out


class ArrayDataset(InMemoryDataset):
    """Data held in memory as arrays: images uint8 [N, H, W, C] or float [N, C, H, W]."""

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: np.ndarray | None = None,
        *,
        name: str = "arrays",
        class_names: list[str] | None = None,
        test_indices: np.ndarray | None = None,
    ):
        x = torch.as_tensor(np.asarray(x))
        if x.ndim == 3:  # [N, H, W] grey images
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
        if x.dtype == torch.uint8:
            self._scale = 1.0 / 255.0
        else:
            self._scale = None
            x = x.float()
        self.x = x.contiguous()
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"{name}: {len(self.x)} inputs but {len(self.y)} labels")
        if len(self.x) == 0:
            raise DataError(f"{name}: no examples")
        self.name = name
        num_classes = None
        if self.y is not None:
            num_classes = int(self.y.max().item()) + 1
            if class_names is not None:
                if num_classes > len(class_names):
                    raise DataError(
                        f"{name}: label {num_classes - 1} but only {len(class_names)} class names"
                    )
                num_classes = len(class_names)
        self.info = DataInfo(shape=tuple(self.x.shape[1:]), num_classes=num_classes)
        self.class_names = class_names
        if test_indices is not None:
            self.test_mask = np.zeros(len(self.x), dtype=bool)
            self.test_mask[np.asarray(test_indices)] = True

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        x = self.x[idx]
        x = x.float() * self._scale if self._scale is not None else x
        out = {"x": x}
        if self.y is not None:
            out["y"] = self.y[idx]
        return out


class ObjectScenes(ABC):
    """Images of scenes made of objects, with the true segmentation of each (the interface
    object models are scored on: ``eval.segmentation``).

    ``segments(indices)`` labels every pixel with the object it shows, 0 for the background and
    1..``max_objects`` for the objects in painting order; ``object_factors(indices)`` gives each
    object's factors (``object_factor_names``; rows of absent objects are -1).
    """

    max_objects: int
    object_factor_names: list[str]
    # Which object factors are categories (shape) rather than quantities (position): the object
    # probes average only the quantities over a scene's objects.
    categorical_object_factors: tuple[str, ...] = ()

    @abstractmethod
    def segments(self, indices: np.ndarray) -> np.ndarray:
        """int64 [n, height * width]: 0 background, k the k-th object."""

    @abstractmethod
    def object_factors(self, indices: np.ndarray) -> np.ndarray:
        """int64 [n, max_objects, len(object_factor_names)]."""


class SceneFactors(ABC):
    """Data whose examples are scenes with factors a scene model's code should carry (the
    number of objects, colours, where things are): ``scene_factors(indices)`` gives float64
    [n, len(scene_factor_names)]; ``categorical_scene_factors`` name the categories among them."""

    scene_factor_names: list[str]
    categorical_scene_factors: tuple[str, ...] = ()

    @abstractmethod
    def scene_factors(self, indices: np.ndarray) -> np.ndarray:
        """float64 [n, len(scene_factor_names)]."""


class GroundTruth(ABC):
    """Data generated from discrete ground-truth factors (disentanglement_lib's interface).

    ``observations(factors)`` renders any point of the factor grid; ``sample_factors(n, rng)``
    draws points of this data (the whole grid, or a subset's own points).
    """

    name: str = "ground truth"
    # Every combination of the factors exists, so ``observations`` renders any of them. False for
    # data holding some points only: ``sample_factors`` draws among them and ``observations``
    # takes theirs alone (metrics that vary one factor at a time need a full grid).
    full_grid: bool = True
    factor_names: list[str]
    factor_sizes: list[int]
    # Which factor doubles as the class label for the probes (e.g. sprites: shape).
    label_factor: str
    # Factors without an order (probed by accuracy; the others by R^2).
    categorical_factors: tuple[str, ...] = ()
    # Ordered factors whose values wrap around (an angle over a full turn): their top values lie
    # next to their bottom ones, so generalisation's composition and extrapolation splits, which
    # hold out a corner or the top of a range, do not cut along them.
    circular_factors: tuple[str, ...] = ()
    # The spec of another rendering of the same factors at the same input shape, the default
    # target of the ``transfer`` part (None: only a user's ``--transfer-data``).
    shifted_rendering: str | None = None

    @abstractmethod
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors [n, F] of this data's points."""

    @abstractmethod
    def observations(self, factors: np.ndarray) -> torch.Tensor:
        """Render the observations [n, ...] of factor vectors [n, F]."""

    def checked_factors(self, factors) -> np.ndarray:
        """``factors`` as int64 [n, F] within the grid; a one-line ValueError for anything else
        (the check every ``observations`` makes of its input)."""
        if isinstance(factors, torch.Tensor):
            factors = factors.detach().cpu().numpy()
        f = np.asarray(factors)
        names, sizes = list(self.factor_names), list(self.factor_sizes)
        if f.ndim != 2 or f.shape[1] != len(sizes):
            raise ValueError(
                f"factors must be an int array of shape [n, {len(sizes)}] ({', '.join(names)}), "
                f"got shape {list(f.shape)}"
            )
        if f.dtype == bool or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"factors must be integer indices, got dtype {f.dtype}")
        f = f.astype(np.int64, copy=False)
        if len(f):
            low, high = f.min(axis=0), f.max(axis=0)
            for j, (name, size) in enumerate(zip(names, sizes, strict=True)):
                if low[j] < 0 or high[j] >= size:
                    bad = low[j] if low[j] < 0 else high[j]
                    raise ValueError(
                        f"factor {name!r} (column {j}) must be in 0..{size - 1}, got {bad} "
                        "(out of range)"
                    )
        return f

    def factors_of(self, indices: np.ndarray) -> np.ndarray:
        """The factor vectors of examples of this data (by their index in it): on a full grid,
        the index is the grid's mixed-radix number."""
        return self.index_to_factors(indices)

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        """Factor vectors of grid indices (the mixed-radix number of the factor indices)."""
        indices = np.asarray(indices)
        size = int(np.prod(self.factor_sizes))
        if indices.size and (indices.min() < 0 or indices.max() >= size):
            lo, hi = indices.min(), indices.max()
            raise ValueError(f"{self.name}: index out of range [0, {size}): got {lo}..{hi}")
        return np.stack(np.unravel_index(indices, self.factor_sizes), axis=1)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)


class GroundTruthDataset(GroundTruth, Dataset):
    """The whole factor grid as a data set: index ``i`` is the mixed-radix number of the factor
    indices, so every point is indexable. Subclasses implement ``observations(factors)`` for an
    int array [n, F]. A conventional test split (a file's own) is ``test_mask`` over the grid
    indices."""

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors drawn uniformly and independently per factor."""
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1)

    def subset(self, indices: np.ndarray) -> GroundTruthSubset:
        return GroundTruthSubset(self, indices)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        factors = self.index_to_factors(indices)
        return self._batch(factors, self.observations(factors))

    def get_batch_on(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        factors = self.index_to_factors(indices)
        batch = self._batch(factors, self.observations_on(factors, device))
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def observations_on(self, factors: np.ndarray, device: torch.device) -> torch.Tensor:
        """``observations(factors)`` made on ``device``: rendered there by a data set that can
        (it overrides this, with the same pixels), else made on the CPU and moved."""
        return self.observations(factors).to(device, non_blocking=True)

    def _batch(self, factors: np.ndarray, x: torch.Tensor) -> dict[str, torch.Tensor]:
        label = self.factor_names.index(self.label_factor)
        return {
            "x": x,
            "y": torch.as_tensor(factors[:, label], dtype=torch.long),
            "factors": torch.as_tensor(factors, dtype=torch.long),
        }


class GroundTruthSubset(Subset, GroundTruth):
    """Some points of a factor grid (a split, a held-out region): the grid's factors and
    renderer, and ``sample_factors`` drawing among these points only."""

    parent: GroundTruth

    def __init__(self, parent: GroundTruth, indices: np.ndarray):
        super().__init__(parent, indices)
        self.full_grid = parent.full_grid
        self.factor_names = parent.factor_names
        self.factor_sizes = parent.factor_sizes
        self.label_factor = parent.label_factor
        self.categorical_factors = parent.categorical_factors
        self.circular_factors = parent.circular_factors

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n of this subset's points, uniformly with replacement."""
        return self.parent.factors_of(rng.choice(self.indices, size=n))

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return self.parent.observations(factors)
