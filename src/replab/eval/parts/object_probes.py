"""What a code says about the objects in a scene: linear probes from the codes of ``ObjectScenes``
images to the number of objects and to each ordinal object factor averaged over the objects
(positions, colours, scales), beside the same probes on the raw pixels and on the untrained
model.

Averages over the objects do not depend on the objects' order, as an object model's pooled slot
code does not. The count is read by logistic regression (accuracy; a data set whose scenes all
hold the same number of objects skips it with a note), the averages by ridge regression (R²),
both by ``probes.factor_probes``. ``suite.object_probe_points`` training images and half as many
test images are drawn with the evaluation's seed. The pixels enter as their leading principal
components (``probes.principal_components``), as in the generalisation part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replab.data.base import ObjectScenes
from replab.eval import probes
from replab.eval.context import ENCODE_BATCH, Context, gather, sample_indices
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.methods.capabilities import Encoder

PICK_STREAM = 31  # default_rng([seed, PICK_STREAM]) picks the images
COUNT = "objects"


@dataclass
class ObjectProbesResult(PartResult):
    key = "object_probes"
    points: int
    # encoder ("representation" | "pixels" | "random_encoder") -> target -> (kind, score)
    scores: dict[str, dict[str, tuple[str, float]]]

    def to_json(self):
        return {"points": self.points, "scores": {
            enc: {t: {"kind": k, "score": s} for t, (k, s) in targets.items()}
            for enc, targets in self.scores.items()}}  # fmt: skip

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("scores"), dict):
            raise ValueError("expected {points, scores: {encoder: {target: {kind, score}}}}")
        scores = {
            str(enc): {str(t): (str(e.get("kind", "")), number(e.get("score")))
                       for t, e in targets.items() if isinstance(e, dict)}
            for enc, targets in obj["scores"].items() if isinstance(targets, dict)
        }  # fmt: skip
        return cls(int(number(obj.get("points", 0)) or 0), scores)

    def summary(self):
        ours = self.scores.get("representation", {})
        r2 = [s for kind, s in ours.values() if kind == "r2" and np.isfinite(s)]
        return {"object R² (mean)": float(np.mean(r2)) if r2 else float("nan")}

    def tables(self):
        first = next(iter(self.scores.values()), {})
        head = ["encoder", *(f"{t} ({'acc.' if kind == 'accuracy' else 'R²'})"
                             for t, (kind, _) in first.items())]  # fmt: skip
        rows = [[enc, *(s[t][1] for t in first)] for enc, s in self.scores.items()]
        return [Table(f"Object probes ({self.points} training images)", head, rows)]


def scene_targets(data: ObjectScenes, indices: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """[n, T] targets and their names: the object count, then each ordinal object factor's mean
    over the objects present (absent objects' rows are -1)."""
    factors = data.object_factors(indices).astype(np.float64)  # [n, K, F]
    present = (factors != -1).any(-1)  # [n, K]
    count = present.sum(1)
    columns, names = [count.astype(np.float64)], [COUNT]
    for j, name in enumerate(data.object_factor_names):
        if name in data.categorical_object_factors:
            continue
        columns.append((factors[:, :, j] * present).sum(1) / np.maximum(count, 1))
        names.append(f"mean {name}")
    return np.stack(columns, 1), names


def probe_sample(ctx: Context, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``suite.object_probe_points`` training examples and half as many test ones,
    drawn from ``default_rng([seed, stream])``."""
    train, test = ctx.data.split("train"), ctx.data.split("test")
    rng = np.random.default_rng([ctx.seed, stream])
    n = ctx.suite.object_probe_points
    idx_train = train.indices[sample_indices(len(train), n, rng)]
    return idx_train, test.indices[sample_indices(len(test), max(1, n // 2), rng)]


def leading_components(raw: np.ndarray, raw_test: np.ndarray, seed: int):
    """Raw features (train, test) as the training features' leading principal components."""
    pcs = probes.principal_components(raw, seed=seed)
    if pcs is None:
        return raw, raw_test
    return (raw - pcs[0]) @ pcs[1], (raw_test - pcs[0]) @ pcs[1]


def probe_encoders(
    ctx: Context,
    encoders: dict,
    targets: tuple[np.ndarray, np.ndarray],
    names: list[str],
    categorical: set[str],
) -> dict:
    """``probes.factor_probes`` for each encoder's (train, test) features: encoder -> target
    -> (kind, score)."""  # fmt: skip
    scores = {}
    for enc, (f_train, f_test) in encoders.items():
        out = probes.factor_probes(f_train, targets[0], f_test, targets[1], names,
                                   categorical=categorical, seed=ctx.seed,
                                   device=ctx.device)  # fmt: skip
        scores[enc] = {t: (v["kind"], v["score"]) for t, v in out.items()}
    return scores


class ObjectProbes(Part):
    name = "object_probes"
    result_type = ObjectProbesResult

    def applies(self, model, data):
        return isinstance(model, Encoder) and isinstance(data, ObjectScenes)

    def run(self, ctx: Context) -> ObjectProbesResult:
        data = ctx.data
        idx_train, idx_test = probe_sample(ctx, PICK_STREAM)
        x_train, x_test = gather(data, idx_train)["x"], gather(data, idx_test)["x"]
        t_train, names = scene_targets(data, idx_train)
        t_test, _ = scene_targets(data, idx_test)
        raw = np.concatenate([data.raw_features(x_train[i : i + ENCODE_BATCH])
                              for i in range(0, len(x_train), ENCODE_BATCH)])  # fmt: skip
        encoders = {
            "representation": (ctx.codes(ctx.model, x_train), ctx.codes(ctx.model, x_test)),
            "pixels": leading_components(raw, data.raw_features(x_test), ctx.seed),
            "random_encoder": (ctx.codes(ctx.random_model, x_train),
                               ctx.codes(ctx.random_model, x_test)),
        }  # fmt: skip
        scores = probe_encoders(ctx, encoders, (t_train, t_test), names, {COUNT})
        return ObjectProbesResult(len(idx_train), scores)
