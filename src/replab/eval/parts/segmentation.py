"""Object segmentation (``eval.segmentation``): an object model's masks against the true ones, by
ARI and foreground ARI per image, averaged, beside random masks and colour k-means.

It applies to a model that segments (``Segmenter``) on data that knows its objects
(``ObjectScenes``). ``suite.segmentation_images`` test images are drawn with the evaluation's
seed (their own generator); each pixel goes to the slot whose mask is largest. The random
baseline gives every pixel one of the model's K slots at random; the colour baseline clusters
each image's pixel colours into as many segments as the data has objects plus background (strong
wherever objects are flat colours that differ from one another, as on Multi-dSprites).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from replab.data.base import ObjectScenes
from replab.eval import segmentation as seg
from replab.eval.analysis import image_grid, png_bytes
from replab.eval.context import ENCODE_BATCH, Context, gather, sample_indices
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.methods.capabilities import Segmenter

PICK_STREAM = 23  # default_rng([seed, PICK_STREAM]) picks the test images
FIGURE = "figures/slots.png"
FIGURE_ROWS = 6
# label colours of the segmentation column (slot k: PALETTE[k % 10], the tab10 colours)
PALETTE = torch.tensor(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]]
) / 255.0  # fmt: skip


@dataclass
class SegmentationResult(PartResult):
    key = "segmentation"
    images: int
    scores: dict[str, dict[str, float]]  # model | random_masks | colour_kmeans -> ari, fg_ari
    figure: bytes | None = field(default=None, repr=False)  # the PNG, until written

    def to_json(self):
        return {"images": self.images, "scores": self.scores, "figure": FIGURE}

    def files(self):
        return {FIGURE: self.figure} if self.figure is not None else {}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("scores"), dict):
            raise ValueError("expected {images, scores: {segmenter: {ari, fg_ari}}}")
        scores = {str(k): {str(m): number(v) for m, v in d.items()}
                  for k, d in obj["scores"].items()}  # fmt: skip
        return cls(int(number(obj.get("images", 0)) or 0), scores)  # the figure stays a file

    def summary(self):
        model = self.scores.get("model", {})
        return {"ARI": model.get("ari", float("nan")), "FG-ARI": model.get("fg_ari", float("nan"))}

    def leaderboard(self):
        return {"FG-ARI": self.scores["model"]["fg_ari"]} if "model" in self.scores else {}

    def tables(self):
        rows = [[name, s["ari"], s["fg_ari"]] for name, s in self.scores.items()]
        return [Table(f"Segmentation ({self.images} test images)", ["masks", "ARI", "FG-ARI"],
                      rows)]  # fmt: skip


def slots_figure(x: torch.Tensor, masks: torch.Tensor, components: torch.Tensor) -> bytes:
    """One row per image: the input, the reconstruction, the argmax segmentation, then what
    each slot paints (its component times its mask)."""
    n, k = masks.shape[:2]
    recon = (masks[:, :, None] * components).sum(1)
    labels = PALETTE[masks.argmax(1) % len(PALETTE)].permute(0, 3, 1, 2)
    slots = masks[:, :, None] * components
    cells = torch.cat([x[:, None], recon[:, None], labels[:, None], slots], 1)
    return png_bytes(Image.fromarray(image_grid(cells.flatten(0, 1), nrow=3 + k)))


def _scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"ari": float(seg.adjusted_rand_index(true, pred).mean()),
            "fg_ari": float(seg.foreground_ari(true, pred).mean())}  # fmt: skip


class Segmentation(Part):
    name = "segmentation"
    result_type = SegmentationResult
    needs_encoder = False

    def applies(self, model, data):
        return isinstance(model, Segmenter) and isinstance(data, ObjectScenes)

    def run(self, ctx: Context) -> SegmentationResult:
        data = ctx.data
        test = data.split("test")
        rng = np.random.default_rng([ctx.seed, PICK_STREAM])
        picked = test.indices[sample_indices(len(test), ctx.suite.segmentation_images, rng)]
        x = gather(data, picked)["x"]
        true = data.segments(picked)
        slots, k = [], 0
        with torch.no_grad():
            for i in range(0, len(x), ENCODE_BATCH):
                masks = ctx.model.masks(x[i : i + ENCODE_BATCH].to(ctx.run.device))
                k = masks.shape[1]
                slots.append(masks.argmax(1).flatten(1).cpu().numpy())
            shown = x[:FIGURE_ROWS]
            masks, components = ctx.model.decompose(shown.to(ctx.run.device))
            figure = slots_figure(shown, masks.float().cpu(), components.float().cpu())
        pred = np.concatenate(slots)
        return SegmentationResult(len(picked), {
            "model": _scores(true, pred),
            "random_masks": _scores(true, seg.random_segments(len(x), true.shape[1], k, ctx.seed)),
            "colour_kmeans": _scores(
                true, seg.colour_segments(x.numpy(), data.max_objects + 1, ctx.seed)),
        }, figure)  # fmt: skip
