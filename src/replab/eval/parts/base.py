"""The seam of the protocol: a part says whether it applies, runs on the shared context, and
returns its typed result.

Adding a part is one file here (copy ``knn.py``: a small part with its result type) and one line
in ``parts/__init__.py``. A part reads the model only through the interfaces it declares
(``methods.capabilities``) and the data through its types (``GroundTruth``, labels in
``DataInfo``); it never looks at a method's or a data set's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from replab.data.base import Dataset
from replab.eval.context import Context
from replab.eval.results import PartResult


class Part(ABC):
    name: ClassVar[str]  # its key in eval.json and in the seconds
    result_type: ClassVar[type[PartResult]]

    @abstractmethod
    def applies(self, model, data: Dataset) -> bool:
        """Whether this part measures anything for ``model`` on ``data``."""

    @abstractmethod
    def run(self, ctx: Context) -> PartResult:
        """The measurement; randomness only from ``ctx.rng`` or ``ctx.seed``."""
