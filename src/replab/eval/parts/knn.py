"""Local class structure: weighted k-NN accuracy on the codes (no training, no tuning)."""

from __future__ import annotations

from dataclasses import dataclass

from replab.eval import probes
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, number


@dataclass
class KnnResult(PartResult):
    key = "knn"
    accuracy: float

    def to_json(self):
        return {"accuracy": self.accuracy}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected {{accuracy: ...}}, got {type(obj).__name__}")
        return cls(number(obj.get("accuracy")))

    def summary(self):
        return {"kNN accuracy": self.accuracy}

    def leaderboard(self):
        return {"kNN": self.accuracy}


class Knn(Part):
    """``probes.knn_accuracy`` (k = 20, DINO's temperature-weighted vote) on the labelled sample."""

    name = "knn"
    result_type = KnnResult

    def applies(self, model, data):
        return data.has_labels

    def run(self, ctx: Context) -> KnnResult:
        lab = ctx.labelled
        accuracy = probes.knn_accuracy(
            lab.codes_train, lab.y_train, lab.codes_test, lab.y_test, device=ctx.device
        )
        return KnnResult(accuracy)
