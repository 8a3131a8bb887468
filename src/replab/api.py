"""The Python API: train, evaluate and load runs the way the command line does.

Each function builds the data set once, from its spec, and hands the object to the training
loop or the protocol; pass a data set you built (``replab.data.make_dataset``, or an
``ArrayDataset`` of your own arrays) to use it as it is.
"""

from __future__ import annotations

import time
from pathlib import Path

from replab.config import load_yaml, resolve
from replab.data import make_dataset
from replab.data.base import Dataset
from replab.eval.protocol import evaluate as _evaluate
from replab.eval.protocol import write_eval
from replab.eval.results import EvalResult
from replab.eval.suite import Suite
from replab.methods import configure, method_class
from replab.run import Run
from replab.run import load as _load
from replab.training.loop import train as _train

__all__ = ["Run", "evaluate", "load", "train"]


def train(
    method: str,
    data: str | Dataset,
    *,
    out: str | Path | None = None,
    config: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    **overrides,
) -> Run:
    """Train ``method`` on ``data`` (a spec such as ``"sprites"``, or a data set); keyword
    overrides are config keys (``steps=100``, ``beta=4`` or ``train__lr=1e-3`` for
    ``train.lr``). Returns the Run."""
    dataset = make_dataset(data) if isinstance(data, str) else data
    kv = {k.replace("__", "."): v for k, v in overrides.items()}
    file_values = load_yaml(config) if config else {}
    if dataset.spec is not None:
        cfg = configure(method, dataset.spec, file_values, kv)
    else:  # built in Python: the config records its name; there is no spec to check
        cfg = resolve(method_class(method), dataset.name, file_values, kv)
    out = out or Path("runs") / f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    return _train(cfg, dataset, out, resume=resume, progress=progress)


def evaluate(
    run: Run | str | Path,
    data: str | Dataset | None = None,
    *,
    suite: str | Suite = "standard",
    seed: int = 0,
    write: bool = True,
    log=None,
) -> EvalResult:
    """The protocol on ``run`` (a Run or its directory) on ``data`` (default: the data it was
    trained on); written to ``RUN/eval.json`` unless ``write=False``."""
    run = run if isinstance(run, Run) else _load(run)
    data = data if data is not None else run.config.data
    dataset = make_dataset(data) if isinstance(data, str) else data
    result = _evaluate(run, dataset, suite, seed=seed, log=log or (lambda message: None))
    if write:
        write_eval(run.dir, result)
    return result


def load(run_dir: str | Path, device: str = "auto") -> Run:
    """A trained run from its directory; ``.encode(x)`` gives the representation."""
    return _load(run_dir, device=device)
