"""What the protocol returns, and ``eval.json`` as a file: typed results that write and read it.

Each evaluation part returns a :class:`PartResult` (its own dataclass, in its own file under
``eval/parts/``) stored in ``eval.json`` under the part's key. :class:`EvalResult` is the whole
file: who was evaluated on what, the parts' results, seconds per part and the notes (warnings)
each part raised. The command line and the report read ``eval.json`` only through it, so the
file's schema lives here and in the parts, nowhere else.

Reading is forgiving, as a report must be: a part whose entry is malformed is left out with a
problem noted, keys nobody knows are kept as they are (``other``), and numbers that are missing,
null or not numbers read as NaN. JSON has no NaN: it is written as null.
"""

from __future__ import annotations

import json
import math
import numbers
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from replab.files import atomic_write_bytes, atomic_write_json

EVAL_FILE = "eval.json"
NAN = float("nan")


def number(v: Any) -> float:
    """A float from a JSON value: numbers as they are, numeric strings ("NaN" too) parsed, and
    None, booleans and anything else NaN."""
    if isinstance(v, bool) or v is None:
        return NAN
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return NAN
    return NAN


def numbers_of(obj: Any) -> dict[str, float]:
    """A mapping of names to numbers; anything but a mapping is malformed (ValueError)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a mapping of numbers, got {type(obj).__name__}")
    return {str(k): number(v) for k, v in obj.items()}


def spread(values: list[float]) -> dict:
    """A figure over seeds: its mean, sample standard deviation (0 for one run) and the runs."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "runs": list(values)}


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN and inf as null, NumPy scalars as Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj) if math.isfinite(float(obj)) else None
    return obj


@dataclass
class Table:
    """A table for the report: a caption, column names, rows of cells (text or numbers; the
    report formats numbers). ``bold_last`` marks a summary row such as a mean."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    bold_last: bool = False


class PartResult(ABC):
    """One part's result: how it is stored in ``eval.json`` and shown."""

    key: ClassVar[str]  # the entry in eval.json (the part's name)

    @abstractmethod
    def to_json(self) -> Any:
        """The entry's JSON value (NaN may stay: the file writer turns it into null)."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Any) -> PartResult:
        """Read the entry back; ValueError or TypeError when it is malformed."""

    def summary(self) -> dict[str, float]:
        """Its headline numbers, for the command line's and the report's summary tables."""
        return {}

    def leaderboard(self) -> dict[str, float]:
        """Its columns (short names; higher is better) when runs are compared side by side."""
        return self.summary()

    def tables(self) -> list[Table]:
        """Its tables in the report."""
        return []

    def files(self) -> dict[str, bytes]:
        """Files written beside eval.json (path relative to the run directory -> content)."""
        return {}


@dataclass
class EvalResult:
    """The protocol's result for one run on one data set (``eval.json``)."""

    method: str
    dataset: str
    suite: str
    seed: int
    representation_dim: int | None = None
    parts: dict[str, PartResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)  # entries of unknown parts, as read
    problems: list[str] = field(default_factory=list)  # what could not be read

    HEADER: ClassVar[tuple[str, ...]] = ("method", "dataset", "suite", "seed", "representation_dim")

    def get(self, kind: type[PartResult]) -> PartResult | None:
        """The result of the part whose result type is ``kind``, if it ran."""
        found = self.parts.get(kind.key)
        return found if isinstance(found, kind) else None

    def summary(self) -> dict[str, float]:
        return {k: v for part in self.parts.values() for k, v in part.summary().items()}

    def leaderboard(self) -> dict[str, float]:
        return {k: v for part in self.parts.values() for k, v in part.leaderboard().items()}

    def to_json(self) -> dict:
        obj: dict[str, Any] = {
            "method": self.method,
            "dataset": self.dataset,
            "suite": self.suite,
            "seed": self.seed,
            "seconds": self.seconds,
        }
        if self.representation_dim is not None:
            obj["representation_dim"] = self.representation_dim
        for key, part in self.parts.items():
            obj[key] = part.to_json()
        if self.notes:
            obj["notes"] = self.notes
        obj.update(self.other)
        return jsonable(obj)

    @classmethod
    def from_json(cls, obj: Any, types: Mapping[str, type[PartResult]]) -> EvalResult:
        """Read an ``eval.json`` object; ``types`` maps entry keys to their result types."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"eval.json holds a {type(obj).__name__}, not an object")
        dim = obj.get("representation_dim")
        result = cls(
            method=str(obj.get("method", "")),
            dataset=str(obj.get("dataset", "")),
            suite=str(obj.get("suite", "")),
            seed=obj.get("seed") if isinstance(obj.get("seed"), int) else 0,
            representation_dim=dim if isinstance(dim, int) and not isinstance(dim, bool) else None,
        )
        seconds = obj.get("seconds", {})
        if isinstance(seconds, Mapping):
            result.seconds = numbers_of(seconds)
        notes = obj.get("notes", {})
        if isinstance(notes, Mapping):
            result.notes = {str(k): [str(n) for n in v] for k, v in notes.items() if _list(v)}
        for key, value in obj.items():
            if key in cls.HEADER or key in ("seconds", "notes"):
                continue
            kind = types.get(key)
            if kind is None:
                result.other[key] = value
                continue
            try:
                result.parts[key] = kind.from_json(value)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                result.problems.append(f"{key} is malformed ({type(e).__name__}: {e})"[:200])
        return result

    def write(self, run_dir: str | Path) -> Path:
        """The parts' files, then ``eval.json``, each written atomically; returns its path."""
        run_dir = Path(run_dir)
        for rel, content in (f for part in self.parts.values() for f in part.files().items()):
            atomic_write_bytes(run_dir / rel, content)
        path = run_dir / EVAL_FILE
        atomic_write_json(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: str | Path, types: Mapping[str, type[PartResult]]) -> EvalResult:
        """``eval.json`` read back; ValueError (one line) when it is not a JSON object."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path.name} is not valid JSON ({e.msg}, line {e.lineno})") from None
        return cls.from_json(obj, types)


def _list(v: Any) -> bool:
    return isinstance(v, list | tuple)
