"""Symmetry: how each single-factor transformation of the world acts on the codes (locality and
equivariance, ``eval.symmetry``)."""

from __future__ import annotations

from dataclasses import dataclass

from replab.data.base import GroundTruth
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number, numbers_of
from replab.eval.symmetry import symmetry_scores


@dataclass
class SymmetryResult(PartResult):
    key = "symmetry"
    factors: list[str]
    response: list[list[float]]  # factor x latent: each factor's share of response per latent
    locality: dict[str, float]  # per factor and "mean"
    equivariance: dict[str, float]

    def to_json(self):
        return {
            "factors": self.factors,
            "response": self.response,
            "locality": self.locality,
            "equivariance": self.equivariance,
        }

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected a mapping, got {type(obj).__name__}")
        response = obj.get("response") or []
        return cls(
            factors=[str(f) for f in obj.get("factors") or []],
            response=[[number(v) for v in row] for row in response if isinstance(row, list)],
            locality=numbers_of(obj.get("locality") or {}),
            equivariance=numbers_of(obj.get("equivariance") or {}),
        )

    def leaderboard(self):
        return {
            "Locality": self.locality.get("mean", float("nan")),
            "Equivariance": self.equivariance.get("mean", float("nan")),
        }

    def tables(self):
        loc, eqv = self.locality, self.equivariance
        names = [k for k in dict.fromkeys([*loc, *eqv]) if k != "mean"]
        rows = [[n, loc.get(n), eqv.get(n)] for n in names]
        has_mean = "mean" in loc or "mean" in eqv
        if has_mean:
            rows.append(["mean", loc.get("mean"), eqv.get("mean")])
        return [Table("Symmetry", ["factor", "locality", "equivariance"], rows, bold_last=has_mean)]


class Symmetry(Part):
    name = "symmetry"
    result_type = SymmetryResult

    def applies(self, model, data):
        """Ground truth that renders any combination of factors (a change of one factor must
        exist for every point)."""
        return isinstance(data, GroundTruth) and data.full_grid

    def run(self, ctx: Context) -> SymmetryResult:
        data, encode = ctx.grid_encoder
        r = symmetry_scores(data, encode, ctx.rng, n_pairs=ctx.suite.symmetry_pairs)
        return SymmetryResult(r["factors"], r["response"], r["locality"], r["equivariance"])
