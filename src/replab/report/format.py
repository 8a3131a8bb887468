"""How the report writes values: numbers to three decimals, missing ones as "n/a", config values
exactly as written."""

from __future__ import annotations

import json
import math
import numbers
from typing import Any


def fmt(v: Any, digits: int = 3) -> str:
    """Numbers to ``digits`` decimals, ints as is, None/NaN as "n/a", anything else as text."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}f}"
    if isinstance(v, str) and v.strip().lower() in ("nan", "none", "null"):
        return "n/a"
    return str(v)


def config_value(v: Any) -> str:
    """A config value as written: no rounding (a learning rate of 1e-4 must not read 0.000)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(config_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(d, dict):
        return [(prefix or "value", config_value(d))]
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.extend(flatten(v, key))
        else:
            out.append((key, config_value(v)))
    return out


def pm(mean: float, std: float) -> str:
    """ "mean ± std" to 3 decimals ("n/a" without a mean, the mean alone without a std)."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if not math.isnan(std) else f"{mean:.3f}"


def mpl_text(s: Any) -> str:
    """Text for matplotlib: ``$`` would start mathtext (and can fail to parse)."""
    return str(s).replace("$", r"\$")
