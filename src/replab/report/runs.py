"""Reading a run directory for the report: its config, training log and evaluation.

A run directory holds ``config.yaml`` (required), and optionally ``metrics.jsonl`` (one JSON
object per log step), ``eval.json`` (read through ``eval.protocol.read_eval``) and ``figures/``.
Whatever is missing or unreadable becomes a note; only a missing directory or config is an error.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from replab.eval.protocol import read_eval
from replab.eval.results import EVAL_FILE, EvalResult, number
from replab.report.format import fmt


@dataclass
class RunView:
    """What the report knows of one run directory."""

    path: Path
    name: str
    config: dict
    metrics: list[dict] = field(default_factory=list)
    eval: EvalResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        v = self.eval.method if self.eval and self.eval.method else self.config.get("method")
        return fmt(v)

    @property
    def dataset(self) -> str:
        v = self.eval.dataset if self.eval and self.eval.dataset else self.config.get("data")
        if isinstance(v, dict):
            v = v.get("name", json.dumps(v, default=str))
        return fmt(v)


def load_run(run_dir: str | Path) -> RunView:
    """Read a run directory. Raises ValueError (one line) if it or its config.yaml is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run directory not found: {path}")
    cfg_path = path / "config.yaml"
    if not cfg_path.is_file():
        raise ValueError(f"not a run directory (no config.yaml): {path}")
    try:
        config = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"unreadable config.yaml in {path}: {first}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"config.yaml in {path} is not a mapping")
    run = RunView(path=path, name=path.resolve().name or str(path), config=config)

    mpath = path / "metrics.jsonl"
    if mpath.is_file():
        bad = 0
        with open(mpath, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(rec, dict):
                    run.metrics.append(rec)
                else:
                    bad += 1
        if bad:
            run.notes.append(f"metrics.jsonl: skipped {bad} unreadable line(s).")
    else:
        run.notes.append("No metrics.jsonl: no training curves.")

    if (path / EVAL_FILE).is_file():
        try:
            run.eval = read_eval(path / EVAL_FILE)
        except ValueError as e:
            run.notes.append(f"{e}.")
        else:
            run.notes += [f"eval.json: {problem}; left out." for problem in run.eval.problems]
    else:
        run.notes.append("No eval.json yet: no evaluation results.")
    return run


def series(run: RunView) -> dict[str, tuple[list[float], list[float]]]:
    """Per logged scalar: (steps, values). Non-numeric values are skipped."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, rec in enumerate(run.metrics):
        step = number(rec.get("step"))
        step = float(i) if math.isnan(step) else step
        for k, v in rec.items():
            if k == "step" or isinstance(v, bool) or not isinstance(v, numbers.Real):
                continue
            xs, ys = out.setdefault(str(k), ([], []))
            xs.append(step)
            ys.append(float(v))
    return out
