"""What a scene model's representation says about the scene: linear probes from ``represent`` of
a scene's context views to its factors (``SceneFactors``: on ``rooms`` the number of objects, the
floor's colour, the objects' mean place), beside the same probes on the mean context view's
pixels and on the untrained model's representation.

The first ``CONTEXT_VIEWS`` views of each scene are the context, as in ``view_prediction``.
``suite.object_probe_points`` training scenes and half as many test scenes are drawn with the
evaluation's seed; ``probes.factor_probes`` reads categories by logistic regression (accuracy)
and quantities by ridge regression (R²). The pixels enter as their leading principal components,
as in the generalisation part.
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import SceneFactors
from replab.eval.context import Context, gather
from replab.eval.parts.base import Part
from replab.eval.parts.object_probes import (
    ObjectProbesResult,
    leading_components,
    probe_encoders,
    probe_sample,
)
from replab.eval.parts.view_prediction import CONTEXT_VIEWS, SCENES_PER_CALL
from replab.eval.results import Table
from replab.methods.capabilities import ViewPredictor

PICK_STREAM = 37  # default_rng([seed, PICK_STREAM]) picks the scenes


class SceneProbesResult(ObjectProbesResult):
    """The object probes' table, over scenes: encoder -> factor -> (kind, score)."""

    key = "scene_probes"

    def summary(self):
        ours = self.scores.get("representation", {})
        r2 = [s for kind, s in ours.values() if kind == "r2" and np.isfinite(s)]
        return {"scene R² (mean)": float(np.mean(r2)) if r2 else float("nan")}

    def tables(self):
        table = super().tables()[0]
        return [Table(f"Scene probes ({self.points} training scenes)", table.columns, table.rows)]


def scene_codes(models, data, indices: np.ndarray, device) -> tuple[list[np.ndarray], np.ndarray]:
    """Each model's ``represent`` of each scene's context views [n, D], and the mean context
    views' pixels [n, C*H*W], all float64; every scene rendered once."""
    codes: list[list[torch.Tensor]] = [[] for _ in models]
    pixels = []
    for i in range(0, len(indices), SCENES_PER_CALL):
        batch = gather(data, indices[i : i + SCENES_PER_CALL])
        views, poses = batch["x"][:, :CONTEXT_VIEWS], batch["pose"][:, :CONTEXT_VIEWS]
        with torch.no_grad():
            for out, model in zip(codes, models, strict=True):
                out.append(model.represent(views.to(device), poses.to(device)).double().cpu())
        pixels.append(views.mean(1).flatten(1).double())
    return [torch.cat(c).numpy() for c in codes], torch.cat(pixels).numpy()


class SceneProbes(Part):
    name = "scene_probes"
    result_type = SceneProbesResult
    needs_encoder = False

    def applies(self, model, data):
        return (
            isinstance(model, ViewPredictor)
            and isinstance(data, SceneFactors)
            and data.info.shape[0] >= CONTEXT_VIEWS
        )

    def run(self, ctx: Context) -> SceneProbesResult:
        data, device = ctx.data, ctx.run.device
        idx_train, idx_test = probe_sample(ctx, PICK_STREAM)
        models = (ctx.model, ctx.random_model)
        (codes, random_train), pixels = scene_codes(models, data, idx_train, device)
        (codes_test, random_test), pixels_test = scene_codes(models, data, idx_test, device)
        encoders = {
            "representation": (codes, codes_test),
            "mean_context_view": leading_components(pixels, pixels_test, ctx.seed),
            "random_encoder": (random_train, random_test),
        }
        targets = (data.scene_factors(idx_train), data.scene_factors(idx_test))
        scores = probe_encoders(ctx, encoders, targets, data.scene_factor_names,
                                set(data.categorical_scene_factors))  # fmt: skip
        return SceneProbesResult(len(idx_train), scores)
