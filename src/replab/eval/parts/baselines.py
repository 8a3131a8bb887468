"""The probe's two baselines, always beside it: the raw input, and the same encoder untrained.

The raw-input features are the data set's own (``Dataset.raw_features``: pixels, a bag of words,
a log-mel spectrum) and their probe is cached across runs (``eval.baseline_cache``); the random
encoder is the method's architecture at a seeded random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from replab.eval import probes
from replab.eval.baseline_cache import cached_linear_probe
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.parts.probe_curves import ProbeScore, curve_from_json, curve_to_json
from replab.eval.results import PartResult


@dataclass
class BaselinesResult(PartResult):
    key = "baselines"
    curves: dict[str, dict[str, ProbeScore]]  # baseline name -> fraction -> score

    def to_json(self):
        return {name: curve_to_json(curve) for name, curve in self.curves.items()}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected {{baseline: curve}}, got {type(obj).__name__}")
        return cls({str(name): curve_from_json(curve) for name, curve in obj.items()})


class Baselines(Part):
    name = "baselines"
    result_type = BaselinesResult

    def applies(self, model, data):
        return data.has_labels

    def run(self, ctx: Context) -> BaselinesResult:
        lab, data, suite = ctx.labelled, ctx.data, ctx.suite
        raw = (data.raw_features(lab.x_train), data.raw_features(lab.x_test))
        random_train, random_test = ctx.random_codes
        curves = {
            data.raw_baseline_name: cached_linear_probe(
                raw[0], lab.y_train, raw[1], lab.y_test, seeds=suite.seeds, device=ctx.device
            ),
            "random_encoder": probes.linear_probe(
                random_train, lab.y_train, random_test, lab.y_test, seeds=suite.seeds,
                device=ctx.device,
            ),
        }  # fmt: skip
        return BaselinesResult(
            {
                name: {f: ProbeScore.from_json(s) for f, s in curve.items()}
                for name, curve in curves.items()
            }
        )
