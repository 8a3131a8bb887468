"""Options after a data set's path: ``NAME:PATH,key=value,...`` (``text:``, ``wav:``, ...).

A data set declares its options once (:class:`Option`: name, type, default, bounds or choices)
and :func:`parse_path_options` splits the argument into the path and the checked values. Options
are read from the end while the last comma-separated part holds ``=``, so a path may itself
contain commas. Every mistake is a one-line ``ValueError`` naming the data set and the option;
the data layer turns it into its own error type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Option:
    """One ``key=value`` option: its type (``str``, ``int`` or ``float``), the default when it is
    not given (``None``: absent from the result), and what values are allowed."""

    name: str
    kind: type = str
    default: Any = None
    min: float | None = None  # inclusive lower bound (numbers)
    positive: bool = False  # numbers: > 0
    choices: tuple[str, ...] | None = None
    unit: str = ""  # named in messages, e.g. "Hz"

    def parse(self, raw: str, spec: str) -> Any:
        unit = f" ({self.unit})" if self.unit else ""
        if self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(
                    f"{spec}: option {self.name} must be an integer{unit}, got {raw!r}"
                ) from None
        elif self.kind is float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(
                    f"{spec}: option {self.name} must be a number, got {raw!r}"
                ) from None
            if not math.isfinite(value):
                raise ValueError(f"{spec}: option {self.name} must be finite, got {raw!r}")
        else:
            value = raw.strip()
            if self.choices is not None and value not in self.choices:
                raise ValueError(
                    f"{spec}: option {self.name}={value!r}; choose from {', '.join(self.choices)}"
                )
            return value
        if self.min is not None and value < self.min:
            bound = f"{self.min:g}{' ' + self.unit if self.unit else ''}"
            raise ValueError(f"{spec}: option {self.name} must be >= {bound}, got {value}")
        if self.positive and not value > 0:
            raise ValueError(f"{spec}: option {self.name} must be > 0, got {value}")
        return value


def parse_path_options(
    arg: str, spec: str, options: Sequence[Option], example: str = "PATH"
) -> tuple[Path, dict[str, Any]]:
    """``PATH,key=value,...`` -> (path, {name: value}) with every declared option that was given
    or has a default. Raises ValueError (one line) for an unknown, repeated or bad option, or a
    missing path."""
    declared = {o.name: o for o in options}
    parts = (arg or "").split(",")
    given: dict[str, Any] = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, raw = parts.pop().partition("=")
        key = key.strip()
        if key not in declared:
            raise ValueError(f"{spec}: unknown option {key!r}; valid: {', '.join(declared)}")
        if key in given:
            raise ValueError(f"{spec}: option {key} given twice")
        given[key] = declared[key].parse(raw, spec)
    path = ",".join(parts).strip()
    if not path:
        raise ValueError(f"{spec}: needs a path, e.g. '{spec}:{example}'")
    values = {
        o.name: given.get(o.name, o.default)
        for o in options
        if o.name in given or o.default is not None
    }
    return Path(path).expanduser(), values
