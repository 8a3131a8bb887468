"""View prediction (scene models, ``ViewPredictor``, on posed views): how well a model renders a
scene from poses it was not shown, beside three baselines that know no 3D.

From each of ``suite.view_scenes`` test scenes (drawn with the evaluation's seed) the first
``CONTEXT_VIEWS`` views are the context and every other view is a query. Per query image: the
mean squared error over its pixel values, and PSNR = 10 log10(1 / MSE) (pixels in [0, 1]); both
averaged over the query images. The baselines: the mean of the context views; the context view
whose camera yaw is nearest the query's; and the model itself given no views (the empty
representation), which shows what it learned about rooms in general.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from replab.eval.analysis import image_grid, png_bytes
from replab.eval.context import Context, gather, sample_indices
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.methods.capabilities import ViewPredictor

CONTEXT_VIEWS = 5
PICK_STREAM = 29  # default_rng([seed, PICK_STREAM]) picks the test scenes
SCENES_PER_CALL = 16
FIGURE = "figures/views.png"
FIGURE_SCENES = 3


@dataclass
class ViewPredictionResult(PartResult):
    key = "view_prediction"
    scenes: int
    context_views: int
    scores: dict[str, dict[str, float]]  # model | mean_context_view | nearest_yaw_view | empty
    figure: bytes | None = field(default=None, repr=False)  # the PNG, until written

    def to_json(self):
        return {"scenes": self.scenes, "context_views": self.context_views,
                "scores": self.scores, "figure": FIGURE}  # fmt: skip

    def files(self):
        return {FIGURE: self.figure} if self.figure is not None else {}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("scores"), dict):
            raise ValueError("expected {scenes, context_views, scores: {predictor: {mse, psnr}}}")
        scores = {str(k): {str(m): number(v) for m, v in d.items()}
                  for k, d in obj["scores"].items()}  # fmt: skip
        return cls(int(number(obj.get("scenes", 0)) or 0),
                   int(number(obj.get("context_views", 0)) or 0), scores)  # fmt: skip

    def summary(self):
        model = self.scores.get("model", {})
        return {"view MSE": model.get("mse", math.nan), "view PSNR": model.get("psnr", math.nan)}

    def leaderboard(self):
        return {"view PSNR": self.scores["model"]["psnr"]} if "model" in self.scores else {}

    def tables(self):
        rows = [[name, s["mse"], s["psnr"]] for name, s in self.scores.items()]
        title = (f"View prediction ({self.scenes} test scenes, {self.context_views} context "
                 "views, the others queried)")  # fmt: skip
        return [Table(title, ["prediction", "MSE", "PSNR (dB)"], rows)]


def views_figure(context: torch.Tensor, true: torch.Tensor, predicted: torch.Tensor) -> bytes:
    """Three rows per scene: its context views, the true query views, the predicted ones."""
    width = max(context.shape[1], true.shape[1])

    def row(images):  # pad a row of views to the figure's width with white
        blank = torch.ones(width - images.shape[1], *images.shape[2:])
        return [torch.cat([images[i], blank]) for i in range(len(images))]

    rows = [r for triple in zip(row(context), row(true), row(predicted), strict=True)
            for r in triple]  # fmt: skip
    return png_bytes(Image.fromarray(image_grid(torch.cat(rows), nrow=width)))


def yaw_of(poses: torch.Tensor) -> torch.Tensor:
    """The yaw (radians) of 7-d poses (x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)."""
    return torch.atan2(poses[..., 4], poses[..., 3])


def nearest_yaw_views(views: torch.Tensor, poses: torch.Tensor, queries: torch.Tensor):
    """For each query pose [n, Q, 7], the context view [n, K, ...] nearest in yaw (circularly)."""
    gap = yaw_of(queries)[:, :, None] - yaw_of(poses)[:, None, :]  # [n, Q, K]
    nearest = torch.atan2(gap.sin(), gap.cos()).abs().argmin(2)
    return views[torch.arange(len(views))[:, None], nearest]


def per_image_errors(predicted: torch.Tensor, true: torch.Tensor) -> np.ndarray:
    """Mean squared error of each image [n, Q, C, H, W] -> [n * Q] (float64)."""
    return ((predicted.double() - true.double()) ** 2).flatten(2).mean(2).flatten().numpy()


def scores(errors: np.ndarray) -> dict[str, float]:
    psnr = 10 * np.log10(1.0 / np.maximum(errors, 1e-12))
    return {"mse": float(errors.mean()), "psnr": float(psnr.mean())}


class ViewPrediction(Part):
    name = "view_prediction"
    result_type = ViewPredictionResult
    needs_encoder = False

    def applies(self, model, data):
        return (
            isinstance(model, ViewPredictor)
            and data.info.kind == "views"
            and data.info.shape[0] > CONTEXT_VIEWS
        )

    def run(self, ctx: Context) -> ViewPredictionResult:
        test = ctx.data.split("test")
        rng = np.random.default_rng([ctx.seed, PICK_STREAM])
        picked = sample_indices(len(test), ctx.suite.view_scenes, rng)
        errors: dict[str, list[np.ndarray]] = {
            "model": [], "mean_context_view": [], "nearest_yaw_view": [], "empty_representation": []
        }  # fmt: skip
        device, figure = ctx.run.device, None
        for i in range(0, len(picked), SCENES_PER_CALL):
            batch = gather(test, picked[i : i + SCENES_PER_CALL])
            x, pose = batch["x"], batch["pose"]
            views, poses = x[:, :CONTEXT_VIEWS], pose[:, :CONTEXT_VIEWS]
            true, queries = x[:, CONTEXT_VIEWS:], pose[:, CONTEXT_VIEWS:]
            with torch.no_grad():
                predicted = ctx.model.predict_views(views.to(device), poses.to(device),
                                                    queries.to(device)).float().cpu()  # fmt: skip
                empty = ctx.model.predict_views(views[:, :0].to(device), poses[:, :0].to(device),
                                                queries.to(device)).float().cpu()  # fmt: skip
            mean_view = views.mean(1, keepdim=True).expand_as(true)
            errors["model"].append(per_image_errors(predicted, true))
            errors["mean_context_view"].append(per_image_errors(mean_view, true))
            errors["nearest_yaw_view"].append(
                per_image_errors(nearest_yaw_views(views, poses, queries), true))  # fmt: skip
            errors["empty_representation"].append(per_image_errors(empty, true))
            if i == 0:
                shown = slice(0, FIGURE_SCENES)
                figure = views_figure(views[shown], true[shown], predicted[shown])
        return ViewPredictionResult(
            len(picked), CONTEXT_VIEWS,
            {name: scores(np.concatenate(parts)) for name, parts in errors.items()}, figure,
        )  # fmt: skip
