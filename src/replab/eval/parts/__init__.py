"""The protocol's parts, in the order they run. Adding a part: its file here, and one line below.

Parts that draw from the context's shared generator draw in this order, so reordering them
changes their numbers (not their meaning).
"""

from __future__ import annotations

from replab.eval.parts.base import Part
from replab.eval.parts.baselines import Baselines
from replab.eval.parts.clustering import Clustering
from replab.eval.parts.disentanglement import Disentanglement
from replab.eval.parts.factor_probes import FactorProbes
from replab.eval.parts.figures import Figures
from replab.eval.parts.generalisation import Generalisation
from replab.eval.parts.knn import Knn
from replab.eval.parts.linear_probe import LinearProbe
from replab.eval.parts.object_probes import ObjectProbes
from replab.eval.parts.robustness import Robustness
from replab.eval.parts.scene_probes import SceneProbes
from replab.eval.parts.segmentation import Segmentation
from replab.eval.parts.symmetry import Symmetry
from replab.eval.parts.transfer import Transfer
from replab.eval.parts.view_prediction import ViewPrediction
from replab.eval.parts.word_queries import WordQueries
from replab.eval.results import PartResult

PARTS: tuple[Part, ...] = (
    LinearProbe(),
    Baselines(),
    Knn(),
    Clustering(),
    Disentanglement(),
    FactorProbes(),
    Symmetry(),
    Figures(),
    WordQueries(),
    Robustness(),
    Generalisation(),
    Transfer(),
    Segmentation(),
    ObjectProbes(),
    ViewPrediction(),
    SceneProbes(),
)

RESULT_TYPES: dict[str, type[PartResult]] = {p.name: p.result_type for p in PARTS}

__all__ = ["PARTS", "RESULT_TYPES", "Part"]
