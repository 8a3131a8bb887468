"""Generalisation to unseen factor combinations (``eval.generalisation``): per-factor readouts
fitted on one side of four splits of the factor grid, scored on the other, for the
representation beside the raw input and the random encoder.

The pool is ``suite.generalisation_points`` factor points drawn uniformly from the grid with
the evaluation's seed (its own generator: the other parts' draws do not move it). The raw-input
baseline is the raw features' first ``probes.RAW_COMPONENTS`` principal components over the pool
(unsupervised, like the encoders): on 64x64 images the readouts on all 4,096 pixels took a
hundred times as long as on the codes, and a ridge readout on the leading components keeps what
it would mostly use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replab.data.base import GroundTruth
from replab.eval import generalisation as gen
from replab.eval import probes
from replab.eval.context import ENCODE_BATCH, Context, EvaluationError, codes_of_factors, finite
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.methods.capabilities import model_encoder

POOL_STREAM = 20  # the pool's generator: default_rng([seed, POOL_STREAM])


@dataclass
class GeneralisationResult(PartResult):
    key = "generalisation"
    factors: list[str]
    kinds: list[str]  # per factor: "r2" or "accuracy"
    # representation | raw baseline | random_encoder -> split -> readout -> score per factor
    scores: dict[str, dict[str, dict[str, list[float]]]]
    points: int

    def mean_r2(self, encoder: str, split: str, readout: str = "linear") -> float:
        values = [s for s, k in zip(self.scores[encoder][split][readout], self.kinds, strict=True)
                  if k == "r2"]  # fmt: skip
        return float(np.mean(values)) if values else float("nan")

    def to_json(self):
        return {"factors": self.factors, "kinds": self.kinds, "points": self.points,
                "scores": self.scores}  # fmt: skip

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("scores"), dict):
            raise ValueError("expected {factors, kinds, scores: {encoder: {split: ...}}}")
        factors = [str(f) for f in obj.get("factors", [])]
        kinds = [str(k) for k in obj.get("kinds", [])]
        if len(kinds) != len(factors):
            raise ValueError(f"{len(kinds)} kinds for {len(factors)} factors")
        scores = {}
        for enc, splits in obj["scores"].items():
            scores[str(enc)] = {}
            for split, readouts in splits.items():
                scores[str(enc)][str(split)] = {}
                for readout, values in readouts.items():
                    values = [number(v) for v in values]
                    if len(values) != len(factors):
                        raise ValueError(f"{len(values)} scores for {len(factors)} factors")
                    scores[str(enc)][str(split)][str(readout)] = values
        return cls(factors, kinds, scores, int(number(obj.get("points", 0)) or 0))

    def summary(self):
        rep = self.scores.get("representation", {})
        return {f"{split} R² (linear)": self.mean_r2("representation", split)
                for split in ("composition", "extrapolation") if split in rep}  # fmt: skip

    def leaderboard(self):
        if "extrapolation" not in self.scores.get("representation", {}):
            return {}
        return {"extrap. R²": self.mean_r2("representation", "extrapolation")}

    def tables(self):
        head = ["encoder", "split", "readout", *[
            f"{f} ({'R²' if k == 'r2' else 'acc.'})" for f, k in zip(self.factors, self.kinds,
                                                                     strict=True)]]  # fmt: skip
        rows = [[enc, split, readout, *values]
                for enc, splits in self.scores.items() for split, readouts in splits.items()
                for readout, values in readouts.items()]  # fmt: skip
        return [Table(f"Generalisation to held-out factor values ({self.points} points)", head,
                      rows)]  # fmt: skip


def _raw_components(data: GroundTruth, factors: np.ndarray, seed: int) -> np.ndarray:
    """The raw features' leading principal components over the pool (all, when fewer)."""
    chunks = [data.raw_features(data.observations(factors[i : i + ENCODE_BATCH]))
              for i in range(0, len(factors), ENCODE_BATCH)]  # fmt: skip
    raw = np.concatenate(chunks).astype(np.float32)
    pcs = probes.principal_components(raw, seed=seed)
    return (raw if pcs is None else (raw - pcs[0]) @ pcs[1]).astype(np.float64)


class Generalisation(Part):
    name = "generalisation"
    result_type = GeneralisationResult

    def applies(self, model, data):
        return isinstance(data, GroundTruth) and data.full_grid

    def check_options(self, data, suite):
        if not 0 < suite.extrapolation_share < 1:
            raise EvaluationError(
                f"--extrapolation-share must lie in (0, 1), got {suite.extrapolation_share}"
            )

    def run(self, ctx: Context) -> GeneralisationResult:
        data, suite = ctx.ground_truth, ctx.suite
        rng = np.random.default_rng([ctx.seed, POOL_STREAM])
        factors = data.sample_factors(suite.generalisation_points, rng)
        names = list(data.factor_names)
        categorical = [names.index(f) for f in data.categorical_factors]
        circular = [names.index(f) for f in data.circular_factors]
        encoders = {
            "representation": lambda: codes_of_factors(
                data, model_encoder(ctx.model), factors, ENCODE_BATCH, np.float64
            ),
            f"{data.raw_baseline_name}_pca{probes.RAW_COMPONENTS}": lambda: _raw_components(
                data, factors, ctx.seed
            ),
            "random_encoder": lambda: codes_of_factors(
                data, model_encoder(ctx.random_model), factors, ENCODE_BATCH, np.float64
            ),
        }
        scores = {}
        for name, codes in encoders.items():
            try:
                scores[name] = gen.generalisation_scores(
                    finite(codes()), factors, list(data.factor_sizes), categorical,
                    seed=ctx.seed, extrapolation_share=suite.extrapolation_share,
                    device=ctx.device, circular=circular,
                )  # fmt: skip
            except gen.SplitError as e:
                raise EvaluationError(f"generalisation: {e}") from None
        kinds = ["accuracy" if j in categorical else "r2" for j in range(len(names))]
        return GeneralisationResult(names, kinds, scores, len(factors))
