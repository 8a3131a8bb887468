"""Data efficiency: a linear probe on frozen codes with 1%, 10% and 100% of the labels."""

from __future__ import annotations

from dataclasses import dataclass

from replab.eval import probes
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.parts.probe_curves import (
    ProbeScore,
    curve_from_json,
    curve_to_json,
    fraction_label,
)
from replab.eval.results import PartResult


@dataclass
class LinearProbeResult(PartResult):
    key = "linear_probe"
    curve: dict[str, ProbeScore]

    def to_json(self):
        return curve_to_json(self.curve)

    @classmethod
    def from_json(cls, obj):
        return cls(curve_from_json(obj))

    def leaderboard(self):
        return {f"probe {fraction_label(f)}": s.mean for f, s in self.curve.items()}


class LinearProbe(Part):
    """``probes.linear_probe`` on the labelled sample's codes, over the suite's seeds."""

    name = "linear_probe"
    result_type = LinearProbeResult

    def applies(self, model, data):
        return data.has_labels

    def run(self, ctx: Context) -> LinearProbeResult:
        lab = ctx.labelled
        curve = probes.linear_probe(
            lab.codes_train,
            lab.y_train,
            lab.codes_test,
            lab.y_test,
            seeds=ctx.suite.seeds,
            device=ctx.device,
        )
        return LinearProbeResult({f: ProbeScore.from_json(s) for f, s in curve.items()})
