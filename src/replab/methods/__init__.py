"""Representation learning methods, one file per method: its model and its loss.

Importing this package registers every method; look them up here. Adding a method: a file here
with ``@register_method`` on its class (copy ``vae.py`` for a generative model, ``simclr.py`` for
a contrastive one, ``rotation.py`` for a pretext task) and its name in the import line below.
"""

from __future__ import annotations

from replab.config import ConfigError, RunConfig, resolve
from replab.data import parse_spec
from replab.methods import (  # noqa: F401  (each import registers its methods)
    barlow_twins,
    bert,
    byol,
    colorization,
    context,
    cpc,
    darla,
    dino,
    disentangling_vae,
    draw,
    frame_order,
    gan,
    gpt,
    gqn,
    jigsaw,
    mae,
    moco_v3,
    monet,
    rotation,
    simclr,
    slot_attention,
    vae,
    vicreg,
    vq_vae,
    word2vec,
)
from replab.methods.base import Method
from replab.registry import METHODS

__all__ = ["Method", "configure", "method_class", "method_names"]


def method_names() -> list[str]:
    return sorted(METHODS)


def method_class(name: str) -> type[Method]:
    """The registered method ``name``; ConfigError naming the choices otherwise."""
    entry = METHODS.get(name)
    if entry is None:
        choices = ", ".join(method_names())
        raise ConfigError(f"method: unknown method {name!r}; choose from: {choices}")
    return entry.obj


def configure(
    method: str | None = None,
    data: str | None = None,
    file_values: dict | None = None,
    overrides: dict | None = None,
) -> RunConfig:
    """The run config of ``method`` on ``data``: its defaults, its optimiser settings, a config
    file's values (``file_values``, which may name the method and data) and ``overrides``
    (``{"train.lr": 1e-3, "beta": 4}``), validated (``config.resolve``). The data spec is
    checked by name here; the data set itself is built by whoever runs the config."""
    file_values = dict(file_values or {})
    overrides = dict(overrides or {})
    method = method or file_values.get("method") or overrides.pop("method", None)
    data = data or overrides.pop("data", None) or file_values.get("data")
    if not method:
        raise ConfigError("no method given; choose from: " + ", ".join(method_names()))
    cls = method_class(method)
    if data:
        try:
            parse_spec(data)
        except ValueError as e:
            raise ConfigError(f"data: {e}") from None
    return resolve(cls, data, file_values, overrides)
