"""Transfer under a domain shift: a linear probe trained on one rendering, tested on another
rendering of the same factors with the same input shape, beside the raw input and the random
encoder.

The target is ``suite.transfer_data`` (``--transfer-data SPEC``) or the data set's own
``shifted_rendering`` (``sprites`` -> ``inverted_sprites``, ``color_sprites`` ->
``noisy_sprites``). On ground-truth data the same ``suite.transfer_points`` factor points are
rendered in both domains: the probe (the label factor, e.g. shape) trains on the source side of
a 75/25 split and is scored on the held-out points in the source rendering (in-domain) and in
the target's (shifted). On other labelled data the target needs the same classes: the probe
trains on the labelled sample and is scored on the source's and the target's test splits. The
raw-input baseline is the raw features' leading principal components fitted on the source
alone (as a probe on all 4,096 or 12,288 pixels costs minutes here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from replab.data import make_dataset
from replab.data.base import Dataset, GroundTruth
from replab.eval import probes
from replab.eval.context import (
    ENCODE_BATCH,
    Context,
    EvaluationError,
    finite,
    gather,
    sample_indices,
)
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.eval.suite import Suite
from replab.methods.capabilities import encode_in_batches, model_encoder, slices

POOL_STREAM = 21  # default_rng([seed, POOL_STREAM]) draws the factor points
HELD_OUT = 0.25


@dataclass
class TransferResult(PartResult):
    key = "transfer"
    source: str
    target: str
    accuracy: dict[str, dict[str, float]]  # encoder -> {"in_domain", "shifted"}

    def to_json(self):
        return {"source": self.source, "target": self.target, "accuracy": {
            enc: dict(a, drop=a["in_domain"] - a["shifted"]) for enc, a in self.accuracy.items()
        }}  # fmt: skip

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("accuracy"), dict):
            raise ValueError("expected {source, target, accuracy: {encoder: {...}}}")
        acc = {str(enc): {k: number(a.get(k)) for k in ("in_domain", "shifted")}
               for enc, a in obj["accuracy"].items()}  # fmt: skip
        return cls(str(obj.get("source", "")), str(obj.get("target", "")), acc)

    def summary(self):
        a = self.accuracy.get("representation")
        if a is None:
            return {}
        return {"transfer: shifted accuracy": a["shifted"],
                "transfer: drop": a["in_domain"] - a["shifted"]}  # fmt: skip

    def leaderboard(self):
        a = self.accuracy.get("representation")
        return {} if a is None else {"shifted acc.": a["shifted"]}

    def tables(self):
        rows = [[enc, a["in_domain"], a["shifted"], a["in_domain"] - a["shifted"]]
                for enc, a in self.accuracy.items()]  # fmt: skip
        head = ["encoder", "in-domain accuracy", "shifted accuracy", "drop"]
        return [Table(f"Transfer: {self.source} -> {self.target}", head, rows)]


def target_spec(data: Dataset, suite: Suite) -> str | None:
    if suite.transfer_data:
        return suite.transfer_data
    return data.shifted_rendering if isinstance(data, GroundTruth) else None


def open_target(data: Dataset, spec: str) -> Dataset:
    """The target data set, checked against the source (one-line EvaluationError)."""
    try:
        target = make_dataset(spec)
    except ValueError as e:  # DataError is a ValueError
        raise EvaluationError(f"--transfer-data: {e}") from None
    name = data.spec or data.name
    if tuple(target.info.shape) != tuple(data.info.shape):
        raise EvaluationError(
            f"--transfer-data: {spec} has inputs of shape {tuple(target.info.shape)}, "
            f"{name} has {tuple(data.info.shape)}"
        )
    if isinstance(data, GroundTruth):
        ours = list(zip(data.factor_names, data.factor_sizes, strict=True))
        theirs = (list(zip(target.factor_names, target.factor_sizes, strict=True))
                  if isinstance(target, GroundTruth) else None)  # fmt: skip
        if theirs != ours:
            raise EvaluationError(
                f"--transfer-data: {spec} does not have {name}'s factors "
                f"({', '.join(f'{n} {s}' for n, s in ours)})"
            )
    elif not target.has_labels or target.info.num_classes != data.info.num_classes:
        raise EvaluationError(
            f"--transfer-data: {spec} needs labels of {name}'s {data.info.num_classes} classes"
        )
    return target


def _accuracy(codes_train, y_train, tests: dict[str, tuple[np.ndarray, np.ndarray]], seed, dev):
    probe = probes.fit_linear_probe(codes_train, y_train, seed=seed, device=dev)
    return {name: probes.probe_accuracy(probe, codes, y) for name, (codes, y) in tests.items()}


def _components(source: np.ndarray, *others: np.ndarray, seed: int) -> list[np.ndarray]:
    """Principal components fitted on ``source`` only, applied to each array."""
    pcs = probes.principal_components(source, seed=seed)
    if pcs is None:
        return [source, *others]
    return [((a - pcs[0]) @ pcs[1]).astype(np.float64) for a in (source, *others)]


class Transfer(Part):
    name = "transfer"
    result_type = TransferResult

    def applies(self, model, data):
        return data.has_labels

    def applies_under(self, model, data, suite):
        return self.applies(model, data) and target_spec(data, suite) is not None

    def check_options(self, data, suite):
        if suite.transfer_data:
            open_target(data, suite.transfer_data)

    def run(self, ctx: Context) -> TransferResult:
        spec = target_spec(ctx.data, ctx.suite)
        target = open_target(ctx.data, spec)
        if isinstance(ctx.data, GroundTruth):
            inputs = self._factor_inputs(ctx, target)
        else:
            inputs = self._labelled_inputs(ctx, target)
        x_train, y_train, x_in, y_in, x_shift, y_shift = inputs
        raw = [ctx.data.raw_features(x).astype(np.float64) for x in (x_train, x_in, x_shift)]
        raw = _components(*raw, seed=ctx.seed)
        feats = {"representation": ctx.model, "random_encoder": ctx.random_model}
        accuracy = {}
        for enc, model in feats.items():
            encode = model_encoder(model)
            c = [finite(encode_in_batches(encode, slices(x, ENCODE_BATCH), np.float64))
                 for x in (x_train, x_in, x_shift)]  # fmt: skip
            tests = {"in_domain": (c[1], y_in), "shifted": (c[2], y_shift)}
            accuracy[enc] = _accuracy(c[0], y_train, tests, ctx.seed, ctx.device)
        raw_name = f"{ctx.data.raw_baseline_name}_pca{probes.RAW_COMPONENTS}"
        tests = {"in_domain": (raw[1], y_in), "shifted": (raw[2], y_shift)}
        accuracy[raw_name] = _accuracy(raw[0], y_train, tests, ctx.seed, ctx.device)
        order = ["representation", raw_name, "random_encoder"]
        return TransferResult(ctx.data.spec or ctx.data.name, spec,
                              {k: accuracy[k] for k in order})  # fmt: skip

    @staticmethod
    def _factor_inputs(ctx: Context, target: GroundTruth):
        data = ctx.ground_truth
        rng = np.random.default_rng([ctx.seed, POOL_STREAM])
        factors = data.sample_factors(ctx.suite.transfer_points, rng)
        held = rng.random(len(factors)) < HELD_OUT
        label = list(data.factor_names).index(data.label_factor)
        y = factors[:, label]
        tr, te = factors[~held], factors[held]

        def render(d: GroundTruth, f: np.ndarray) -> torch.Tensor:
            return torch.cat([d.observations(c) for c in slices(f, ENCODE_BATCH)])

        return (render(data, tr), y[~held], render(data, te), y[held], render(target, te),
                y[held])  # fmt: skip

    @staticmethod
    def _labelled_inputs(ctx: Context, target: Dataset):
        lab = ctx.labelled
        test = target.split("test")
        rng = np.random.default_rng([ctx.seed, POOL_STREAM])
        t = gather(test, sample_indices(len(test), ctx.suite.n_test, rng))
        return lab.x_train, lab.y_train, lab.x_test, lab.y_test, t["x"], t["y"].numpy()
