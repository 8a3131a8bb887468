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
from replab.eval.suite import Suite


class Part(ABC):
    name: ClassVar[str]  # its key in eval.json and in the seconds
    result_type: ClassVar[type[PartResult]]
    # Whether it reads the model's codes (``Encoder``). A part that reads another interface
    # (a scene model's predicted views) runs for models without an encoder too.
    needs_encoder: ClassVar[bool] = True

    @abstractmethod
    def applies(self, model, data: Dataset) -> bool:
        """Whether this part measures anything for ``model`` on ``data``."""

    def check_options(self, data: Dataset, suite: Suite) -> None:
        """Raise ``EvaluationError`` (one line) when the suite's options for this part cannot
        work on ``data``; the protocol asks every part before any runs. Most parts take no
        options: nothing to check."""
        return None

    def applies_under(self, model, data: Dataset, suite: Suite) -> bool:
        """Whether it runs under ``suite``'s options too (a part needing an option overrides
        this); by default, whether it applies."""
        return self.applies(model, data)

    @abstractmethod
    def run(self, ctx: Context) -> PartResult:
        """The measurement; randomness only from ``ctx.rng`` or ``ctx.seed``."""
