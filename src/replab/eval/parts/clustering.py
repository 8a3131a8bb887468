"""Do the classes form the codes' natural clusters? k-means against the labels (NMI, ARI)."""

from __future__ import annotations

from dataclasses import dataclass

from replab.eval import probes
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, numbers_of


@dataclass
class ClusteringResult(PartResult):
    key = "clustering"
    scores: dict[str, float]  # "nmi", "ari"

    def to_json(self):
        return dict(self.scores)

    @classmethod
    def from_json(cls, obj):
        return cls(numbers_of(obj))

    def summary(self):
        return {f"clustering {_label(k)}": v for k, v in self.scores.items()}

    def leaderboard(self):
        return {_label(k): v for k, v in self.scores.items()}


def _label(score: str) -> str:
    return score.upper() if len(score) <= 3 else score


class Clustering(Part):
    name = "clustering"
    result_type = ClusteringResult

    def applies(self, model, data):
        return data.has_labels

    def run(self, ctx: Context) -> ClusteringResult:
        lab = ctx.labelled
        return ClusteringResult(probes.clustering_scores(lab.codes_test, lab.y_test, seed=ctx.seed))
