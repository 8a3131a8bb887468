"""Name -> class tables for methods and data sets: tables and decorators, nothing else.

The lowest layer: it imports nothing of replab, so every layer may register into it. The tables
fill when the packages that register are imported: ``replab.methods`` (each method file's
``@register_method``) and ``replab.data`` (each data set's ``@register_dataset``); look names up
through those packages (``replab.methods.method_class``, ``replab.data.make_dataset``), which
import every file first. Data sets register a factory taking the part of the spec after the
colon (``idx:PATH`` -> ``factory("PATH")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PILLARS = ("generative", "contrastive", "pretext")


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Callable
    summary: str
    pillar: str | None = None
    takes_argument: bool = False  # data sets like ``idx:PATH``


METHODS: dict[str, Entry] = {}
DATASETS: dict[str, Entry] = {}


def _summary(obj) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def register_method(name: str, pillar: str):
    if pillar not in PILLARS:
        raise ValueError(f"pillar must be one of {PILLARS}, got {pillar!r}")

    def wrap(cls):
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        METHODS[name] = Entry(name, cls, _summary(cls), pillar)
        cls.registry_name = name
        return cls

    return wrap


def register_dataset(name: str, takes_argument: bool = False):
    """Register a factory ``f() -> Dataset`` (or ``f(arg) -> Dataset`` for ``name:arg`` specs)."""

    def wrap(factory):
        if name in DATASETS:
            raise ValueError(f"data set {name!r} registered twice")
        DATASETS[name] = Entry(name, factory, _summary(factory), None, takes_argument)
        return factory

    return wrap
