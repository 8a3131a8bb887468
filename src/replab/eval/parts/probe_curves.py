"""The result type the linear probe and its baselines share: accuracy per label fraction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replab.eval.results import Table, number

BASELINE_NAMES = {"pixels": "pixels", "random_encoder": "random encoder"}


@dataclass
class ProbeScore:
    """One label fraction: mean and std of the test accuracy over the probe's seeds, each seed's
    score and chosen L2 strength, and how many labels the first seed's subset had."""

    mean: float
    std: float = float("nan")
    scores: list[float] = field(default_factory=list)
    l2: list[float] = field(default_factory=list)
    n_labels: int | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"mean": self.mean, "std": self.std}
        if self.scores:
            out["scores"] = self.scores
        if self.l2:
            out["l2"] = self.l2
        if self.n_labels is not None:
            out["n_labels"] = self.n_labels
        return out

    @classmethod
    def from_json(cls, obj: Any) -> ProbeScore:
        if not isinstance(obj, dict):
            return cls(mean=number(obj))
        n = obj.get("n_labels")
        return cls(
            mean=number(obj.get("mean")),
            std=number(obj.get("std")),
            scores=[number(v) for v in obj.get("scores") or []],
            l2=[number(v) for v in obj.get("l2") or []],
            n_labels=n if isinstance(n, int) and not isinstance(n, bool) else None,
        )


def curve_to_json(curve: dict[str, ProbeScore]) -> dict:
    return {fraction: score.to_json() for fraction, score in curve.items()}


def curve_from_json(obj: Any) -> dict[str, ProbeScore]:
    """{fraction: score}; anything but a mapping is malformed."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected {{fraction: scores}}, got {type(obj).__name__}")
    return {str(k): ProbeScore.from_json(v) for k, v in obj.items()}


def fraction_label(fraction: str) -> str:
    """'0.01' -> '1%' (the key as it is when it is not a number)."""
    value = number(fraction)
    return f"{value * 100:g}%" if value == value else str(fraction)


def baseline_name(key: str) -> str:
    return BASELINE_NAMES.get(key, key)


def sorted_fractions(keys) -> list[str]:
    """Fraction keys by value (keys that are not numbers last, by name)."""
    keys = list(dict.fromkeys(keys))
    return sorted(keys, key=lambda k: (number(k) != number(k), number(k), str(k)))


def probe_table(
    curve: dict[str, ProbeScore] | None, baselines: dict[str, dict[str, ProbeScore]] | None
) -> Table | None:
    """The probe's accuracy per label fraction beside its baselines' (mean ± std over seeds)."""
    curve, baselines = curve or {}, baselines or {}
    fractions = sorted_fractions([*curve, *(f for b in baselines.values() for f in b)])
    if not fractions:
        return None
    columns = ["label fraction", "representation", *map(baseline_name, baselines)]
    rows = [
        [fraction_label(f), curve.get(f), *(b.get(f) for b in baselines.values())]
        for f in fractions
    ]
    return Table("Linear probe (accuracy, mean ± std over seeds)", columns, rows)
