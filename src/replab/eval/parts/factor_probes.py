"""How linearly each ground-truth factor can be read from the codes: accuracy for categorical
factors, R^2 for ordered ones, on the context's factor sample."""

from __future__ import annotations

from dataclasses import dataclass

from replab.data.base import GroundTruth
from replab.eval import probes
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number


@dataclass
class FactorProbesResult(PartResult):
    key = "factor_probes"
    scores: dict[str, tuple[str, float]]  # factor -> (kind "accuracy" | "r2", score)

    def to_json(self):
        return {name: {"kind": kind, "score": score} for name, (kind, score) in self.scores.items()}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected {{factor: {{kind, score}}}}, got {type(obj).__name__}")
        scores = {}
        for name, entry in obj.items():
            entry = entry if isinstance(entry, dict) else {"score": entry}
            scores[str(name)] = (str(entry.get("kind", "")), number(entry.get("score")))
        return cls(scores)

    def tables(self):
        rows = [[name, kind, score] for name, (kind, score) in self.scores.items()]
        return [Table("Factor probes", ["factor", "kind", "score"], rows)]


class FactorProbes(Part):
    name = "factor_probes"
    result_type = FactorProbesResult

    def applies(self, model, data):
        return isinstance(data, GroundTruth)

    def run(self, ctx: Context) -> FactorProbesResult:
        sample, data = ctx.factor_sample, ctx.ground_truth
        scores = probes.factor_probes(
            sample.codes_train,
            sample.factors_train,
            sample.codes_test,
            sample.factors_test,
            list(data.factor_names),
            categorical=set(data.categorical_factors),
            seed=ctx.seed,
            device=ctx.device,
        )
        return FactorProbesResult({k: (v["kind"], v["score"]) for k, v in scores.items()})
