"""Latent traversals, reconstructions and samples of a model with a decoder (``eval.analysis``).

The images travel in the result and are written beside ``eval.json`` with it (``figures/``);
``eval.json`` keeps their paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replab.eval.analysis import model_figures, png_bytes
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult
from replab.methods.capabilities import Decoder, Encoder

FOLDER = "figures"


@dataclass
class FiguresResult(PartResult):
    key = "figures"
    paths: dict[str, str]  # figure name -> path relative to the run directory
    images: dict[str, bytes] = field(default_factory=dict, repr=False)  # PNGs not yet written

    def to_json(self):
        return dict(self.paths)

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected {{figure: path}}, got {type(obj).__name__}")
        return cls({str(k): v for k, v in obj.items() if isinstance(v, str)})

    def files(self):
        return {self.paths[name]: content for name, content in self.images.items()}


class Figures(Part):
    name = "figures"
    result_type = FiguresResult

    def applies(self, model, data):
        return isinstance(model, Decoder) and isinstance(model, Encoder)

    def run(self, ctx: Context) -> FiguresResult:
        images = model_figures(ctx.model, ctx.data.split("test"))
        return FiguresResult(
            paths={name: f"{FOLDER}/{name}.png" for name in images},
            images={name: png_bytes(image) for name, image in images.items()},
        )
