"""What the protocol's parts share: the run, the data, the suite, and the samples and codes that
several parts use, each computed once on first use.

The samples are drawn from one generator (``rng``, seeded by the evaluation's seed) in the order
the parts ask for them, so a whole evaluation is a pure function of (run, data, suite, seed).
Every code goes through the model's ``encode`` alone (``methods.capabilities``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from replab.data.base import Dataset, GroundTruth
from replab.eval.suite import Suite
from replab.methods.capabilities import encode_in_batches, model_encoder, slices
from replab.run import Run, build_model

# Largest table of codes (bytes) the protocol keeps to encode a factor grid once (EncodedGrid).
GRID_TABLE_MAX_BYTES = 4 * 2**30
ENCODE_BATCH = 1024  # inputs per call of ``encode``


class EvaluationError(ValueError):
    """The run or data cannot be evaluated (one line, shown to the user)."""


def sample_indices(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct indices of ``n_total`` (all of them when there are no more), sorted."""
    return (
        np.sort(rng.choice(n_total, size=n, replace=False)) if n < n_total else np.arange(n_total)
    )


def gather(data: Dataset, indices: np.ndarray, batch_size: int = 2048) -> dict[str, torch.Tensor]:
    """The examples at ``indices`` as one batch (fetched in chunks)."""
    parts = [
        data.get_batch(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def finite(codes: np.ndarray) -> np.ndarray:
    if not np.isfinite(codes).all():
        raise EvaluationError("the representation contains NaN or inf values")
    return codes


def codes_of_factors(
    data: GroundTruth, encode: Callable, factors: np.ndarray, batch_size: int, dtype=np.float64
) -> np.ndarray:
    """Codes [n, d] of the observations of factor rows [n, F], rendered and encoded in chunks."""
    chunks = (data.observations(f) for f in slices(factors, batch_size))
    return encode_in_batches(encode, chunks, dtype)


class EncodedGrid(GroundTruth):
    """A ground-truth data set whose whole factor grid was encoded once, standing in for it.

    The BetaVAE and FactorVAE scores at disentanglement_lib's sizes encode far more sampled
    images than some grids hold (``sprites``: 737,280): past that size one pass over the grid and
    look-ups are cheaper. Observations of ground-truth data are a function of their factors, so
    the look-ups give the codes that encoding would. Here the "observations" are grid indices
    and ``encode`` maps them to their codes; the metrics take (data, encode) and need no change.
    """

    def __init__(self, data: GroundTruth, encode: Callable, batch_size: int = 4096):
        self.data = data
        self.name = data.name
        self.factor_names, self.factor_sizes = data.factor_names, data.factor_sizes
        self.label_factor = data.label_factor
        self.categorical_factors = data.categorical_factors
        self.circular_factors = data.circular_factors
        grid = data.index_to_factors(np.arange(int(np.prod(data.factor_sizes))))
        self.codes = codes_of_factors(data, encode, grid, batch_size, dtype=np.float32)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.data.sample_factors(n, rng)

    def observations(self, factors) -> np.ndarray:
        return self.data.factors_to_index(np.asarray(factors))

    def encode(self, indices) -> np.ndarray:
        return self.codes[np.asarray(indices)]


def sampled_encodings(suite: Suite) -> int:
    """How many images the suite's BetaVAE and FactorVAE scores encode (batches of 64)."""
    return (suite.score_train + suite.score_eval) * 64 * 3 + suite.variance_points


@dataclass
class Labelled:
    """The labelled sample the probes share: inputs, labels (None without), and codes."""

    x_train: torch.Tensor
    x_test: torch.Tensor
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    codes_train: np.ndarray
    codes_test: np.ndarray


@dataclass
class FactorSample:
    """Factor points drawn from the grid and their codes (float64), train and test."""

    factors_train: np.ndarray
    factors_test: np.ndarray
    codes_train: np.ndarray
    codes_test: np.ndarray


class Context:
    """One evaluation's shared state; a part reads what it needs and computes nothing twice."""

    def __init__(self, run: Run, data: Dataset, suite: Suite, seed: int = 0, log=print):
        self.run, self.model, self.data, self.suite, self.seed = run, run.model, data, suite, seed
        self.log = log
        self.device = run.device.type  # where the probes fit
        self.rng = np.random.default_rng(seed)
        self.seconds: dict[str, float] = {}
        self._inner = [0.0]  # seconds spent in nested timers, per level
        # A random-initialised copy of the same architecture, the second baseline: built here,
        # right after seeding torch, so it is the same whichever parts run.
        torch.manual_seed(seed)
        self.random_model = build_model(run.config, self.model.info).to(run.device).eval()

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time a block into ``seconds[name]``, less the time of the timed blocks inside it."""
        self.log(f"  {name} ...")
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            inner = self._inner.pop()
            elapsed = time.perf_counter() - start
            self._inner[-1] += elapsed
            self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed - inner, 3)

    def codes(self, model, x: torch.Tensor) -> np.ndarray:
        """``model``'s codes of ``x`` as float64 [n, d]; NaN or inf is refused."""
        return finite(encode_in_batches(model_encoder(model), slices(x, ENCODE_BATCH), np.float64))

    @property
    def has_labels(self) -> bool:
        return self.data.has_labels

    @property
    def ground_truth(self) -> GroundTruth | None:
        return self.data if isinstance(self.data, GroundTruth) else None

    @cached_property
    def labelled(self) -> Labelled:
        """The suite's sample of the train and test splits, with the model's codes."""
        with self.timed("features"):
            train, test = self.data.split("train"), self.data.split("test")
            tr = gather(train, sample_indices(len(train), self.suite.n_train, self.rng))
            te = gather(test, sample_indices(len(test), self.suite.n_test, self.rng))
            return Labelled(
                x_train=tr["x"],
                x_test=te["x"],
                y_train=tr["y"].numpy() if "y" in tr else None,
                y_test=te["y"].numpy() if "y" in te else None,
                codes_train=self.codes(self.model, tr["x"]),
                codes_test=self.codes(self.model, te["x"]),
            )

    @cached_property
    def random_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The random encoder's codes of the labelled sample (train, test)."""
        lab = self.labelled
        return self.codes(self.random_model, lab.x_train), self.codes(self.random_model, lab.x_test)

    @cached_property
    def grid_encoder(self) -> tuple[GroundTruth, Callable]:
        """(data, encode) for the ground-truth metrics: the data and the model's encoder, or the
        grid encoded once where the suite would encode more images than the grid holds and the
        table of codes fits in ``GRID_TABLE_MAX_BYTES``."""
        data, encode = self.ground_truth, model_encoder(self.model)
        grid = int(np.prod(data.factor_sizes))
        dim = self.labelled.codes_train.shape[1]
        small = grid < sampled_encodings(self.suite) and grid * dim * 4 <= GRID_TABLE_MAX_BYTES
        if data.full_grid and small:
            with self.timed("grid_encoding"):
                table = EncodedGrid(data, encode)
            return table, table.encode
        return data, encode

    @cached_property
    def factor_sample(self) -> FactorSample:
        """The suite's factor points (train and test) and their codes."""
        data, encode = self.grid_encoder
        fac_train = self.ground_truth.sample_factors(self.suite.dis_train, self.rng)
        fac_test = self.ground_truth.sample_factors(self.suite.dis_test, self.rng)
        return FactorSample(
            factors_train=fac_train,
            factors_test=fac_test,
            codes_train=finite(codes_of_factors(data, encode, fac_train, ENCODE_BATCH)),
            codes_test=finite(codes_of_factors(data, encode, fac_test, ENCODE_BATCH)),
        )
