"""Disentanglement, on data with ground-truth factors: disentanglement_lib's seven metrics.

BetaVAE and FactorVAE scores sample their own batches of factor points; MIG, DCI, SAP,
modularity and explicitness use the context's factor sample. DCI and SAP fit a model per
dimension (gradient-boosted trees, SVMs), so on representations wider than ``DCI_MAX_DIMS`` they
are skipped with a note rather than left running for hours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from replab.data.base import GroundTruth
from replab.eval import disentanglement as dis
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, numbers_of

DCI_MAX_DIMS = 256
NAMES = {
    "beta_vae": "β-VAE score",
    "factor_vae": "FactorVAE score",
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness",
    "sap": "SAP",
    "modularity": "Modularity",
    "explicitness": "Explicitness",
}
# the leaderboard's short names
SHORT = {
    "beta_vae": "β-VAE",
    "factor_vae": "FactorVAE",
    "mig": "MIG",
    "dci_disentanglement": "DCI-D",
    "sap": "SAP",
    "modularity": "Modularity",
}
NAN = float("nan")


@dataclass
class DisentanglementResult(PartResult):
    key = "disentanglement"
    scores: dict[str, float]

    def to_json(self):
        return dict(self.scores)

    @classmethod
    def from_json(cls, obj):
        return cls(numbers_of(obj))

    def leaderboard(self):
        return {SHORT[k]: v for k, v in self.scores.items() if k in SHORT}

    def tables(self):
        rows = [[NAMES.get(k, k), v] for k, v in self.scores.items()]
        return [Table("Disentanglement", ["metric", "score"], rows)]


def narrow_enough(codes, metric: str, why: str) -> bool:
    """False, with a warning (a note in eval.json), for codes wider than DCI_MAX_DIMS."""
    if codes.shape[1] <= DCI_MAX_DIMS:
        return True
    warnings.warn(
        f"{metric} skipped: the representation has {codes.shape[1]} dimensions (over "
        f"{DCI_MAX_DIMS}); {why}",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


class Disentanglement(Part):
    name = "disentanglement"
    result_type = DisentanglementResult

    def applies(self, model, data):
        return isinstance(data, GroundTruth)

    def run(self, ctx: Context) -> DisentanglementResult:
        s = ctx.suite
        sample = ctx.factor_sample
        c_tr, fac_tr = sample.codes_train, sample.factors_train
        c_te, fac_te = sample.codes_test, sample.factors_test
        data, encode = ctx.grid_encoder
        n_tr, n_te = s.dci_train, s.dci_test
        if narrow_enough(c_tr, "DCI", "gradient-boosted trees on it would take hours"):
            d = dis.dci(c_tr[:n_tr], fac_tr[:n_tr], c_te[:n_te], fac_te[:n_te], n_jobs=-1)
        else:
            d = dict.fromkeys(("disentanglement", "completeness", "informativeness_test"), NAN)
        sap = (
            dis.sap(c_tr, fac_tr, c_te, fac_te)
            if narrow_enough(c_tr, "SAP", "it fits one SVM per dimension and factor")
            else NAN
        )
        me = dis.modularity_explicitness(c_tr, fac_tr, c_te, fac_te)
        if ctx.ground_truth.full_grid:
            beta_vae = dis.beta_vae_score(
                data, encode, ctx.rng, num_train=s.score_train, num_eval=s.score_eval
            )
            factor_vae = dis.factor_vae_score(
                data,
                encode,
                ctx.rng,
                num_train=s.score_train,
                num_eval=s.score_eval,
                num_variance_estimate=s.variance_points,
            )
        else:
            warnings.warn(
                "BetaVAE and FactorVAE scores skipped: they fix one factor and draw the others "
                "freely, and the data's factors are points, not a full grid",
                RuntimeWarning,
                stacklevel=2,
            )
            beta_vae = factor_vae = NAN
        return DisentanglementResult(
            {
                "beta_vae": beta_vae,
                "factor_vae": factor_vae,
                "mig": dis.mig(c_tr, fac_tr),
                "dci_disentanglement": d["disentanglement"],
                "dci_completeness": d["completeness"],
                "dci_informativeness": d["informativeness_test"],
                "sap": sap,
                "modularity": me["modularity"],
                "explicitness": me["explicitness_test"],
            }
        )
