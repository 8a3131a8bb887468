"""The evaluation protocol: one procedure for every method, through ``encode(x)`` alone.

``evaluate(run, data, suite)`` builds the shared context (the labelled sample and its codes
first), then runs every part of ``eval.parts.PARTS`` that applies to the model and the data:
the linear probe at 1/10/100% of the labels beside its two baselines (raw input, the same
architecture at random initialisation), kNN, k-means, and, for data with ground-truth factors,
the disentanglement metrics, per-factor probes and symmetry scores; models with a decoder also
get traversal, reconstruction and sample figures, word spaces their nearest neighbours. It
returns an :class:`EvalResult`; ``write_eval`` puts it in the run directory. Nothing here looks at
the method's name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from replab.data.base import Dataset
from replab.eval.context import Context, EvaluationError, gather
from replab.eval.parts import PARTS, RESULT_TYPES, Part
from replab.eval.results import EVAL_FILE, EvalResult
from replab.eval.suite import SUITES, Suite
from replab.run import Run

__all__ = [
    "SUITES",
    "EvalResult",
    "EvaluationError",
    "Suite",
    "evaluate",
    "read_eval",
    "suite_named",
    "write_eval",
]


def suite_named(name: str) -> Suite:
    if name not in SUITES:
        raise EvaluationError(f"unknown suite {name!r}; choose from: {', '.join(SUITES)}")
    return SUITES[name]


def runnable(part: Part, run: Run, data: Dataset, suite: Suite) -> bool:
    """Whether ``part`` measures ``run`` on ``data`` under ``suite``."""
    if part.needs_encoder and not run.has_encoder:
        return False
    return part.applies_under(run.model, data, suite)


def check_evaluable(run: Run, data: Dataset) -> None:
    """One-line EvaluationError unless the run has a representation (or another interface some
    part reads, as a scene model's views) that takes ``data``."""
    if not run.has_encoder and not any(
        not p.needs_encoder and p.applies(run.model, data) for p in PARTS
    ):
        raise EvaluationError(
            f"method {run.config.method} has no encoder, so it has no representation to evaluate"
        )
    shape = tuple(data.info.shape)
    if not run.model.accepts_shape(shape):
        raise EvaluationError(
            f"data set {data.spec or data.name} has inputs of shape {shape}, but the model was "
            f"trained on {tuple(run.model.info.shape)}"
        )


def _representation_dim(ctx: Context, run: Run, data: Dataset) -> int | None:
    """The code's width: from the probes' labelled sample where there are labels (drawn first,
    as every evaluation does), else from one test input, not a sample nothing would use."""
    if not run.has_encoder:
        return None
    if data.has_labels:
        return int(ctx.labelled.codes_train.shape[1])
    one = gather(data.split("test"), np.arange(1))["x"]
    return int(ctx.codes(run.model, one).shape[1])


def evaluate(
    run: Run,
    data: Dataset,
    suite: Suite | str = "standard",
    seed: int = 0,
    log=print,
) -> EvalResult:
    """Run the protocol's parts that apply to ``run`` on ``data`` (a whole data set: the parts
    sample its train and test splits); every random choice comes from ``seed``."""
    suite = suite_named(suite) if isinstance(suite, str) else suite
    check_evaluable(run, data)
    if suite.parts is not None:
        unknown = set(suite.parts) - set(RESULT_TYPES)
        if unknown:
            raise EvaluationError(
                f"unknown part {sorted(unknown)[0]!r}; choose from: {', '.join(RESULT_TYPES)}"
            )
    for part in PARTS:
        if suite.parts is None or part.name in suite.parts:
            part.check_options(data, suite)
    ctx = Context(run, data, suite, seed, log)
    result = EvalResult(
        method=run.config.method,
        dataset=data.spec or data.name,
        suite=suite.name,
        seed=seed,
        representation_dim=_representation_dim(ctx, run, data),
        seconds=ctx.seconds,
    )
    for part in PARTS:
        if suite.parts is not None and part.name not in suite.parts:
            continue
        if not runnable(part, run, data, suite):
            continue
        with warnings.catch_warnings(record=True) as caught, ctx.timed(part.name):
            warnings.simplefilter("always")
            result.parts[part.name] = part.run(ctx)
        notes = sorted({str(w.message) for w in caught})
        if notes:
            result.notes[part.name] = notes
    return result


def write_eval(run_dir: str | Path, result: EvalResult) -> Path:
    """``result`` into the run directory: its figures, then ``eval.json``; returns that path."""
    return result.write(run_dir)


def read_eval(path: str | Path) -> EvalResult:
    """An ``eval.json`` (or a run directory holding one) read back through the parts' types."""
    path = Path(path)
    if path.is_dir():
        path = path / EVAL_FILE
    return EvalResult.read(path, RESULT_TYPES)
