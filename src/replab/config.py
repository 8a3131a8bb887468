"""Typed configs: dataclasses with validated fields, a YAML file and ``key=value`` overrides.

Resolution order, later wins: the dataclass defaults < the method's ``train_defaults`` (its
published optimiser settings) < the YAML file (``-c run.yaml``) < command-line overrides.

Every field may carry bounds or choices (``param(..., min=0, choices=...)``); ``validate`` checks
them all before any work starts and raises ``ConfigError`` with one line naming the key.

This module knows no method by name and imports no torch: :func:`resolve` takes the method's
class (its ``Config`` and ``train_defaults``); ``replab.methods.configure`` looks the name up.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from replab.files import atomic_write_text


class ConfigError(ValueError):
    """A bad configuration: one line naming the key and what is allowed."""


def param(default, *, min=None, max=None, choices=None, help: str = ""):  # noqa: A002
    """A dataclass field with bounds/choices checked by ``validate``."""
    meta = {"min": min, "max": max, "choices": choices, "help": help}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


class Presets:
    """A method's ``Config`` that names sets of its settings: ``PRESETS[name]`` is applied when
    ``model.preset=name`` is chosen, before any other value from a file or the command line (so
    those still win). E.g. the paper's sizes for a GPU beside defaults that fit a CPU."""

    PRESETS: typing.ClassVar[dict[str, dict]] = {}


def _chosen_preset(file_values: dict, overrides: dict) -> str | None:
    for key in ("model.preset", "preset"):
        if key in overrides:
            return str(overrides[key])
    section = file_values.get("model")
    return str(section["preset"]) if isinstance(section, dict) and "preset" in section else None


@dataclass
class TrainConfig:
    """The training loop's settings. Methods override the optimiser defaults they publish."""

    steps: int = param(3000, min=1, help="optimisation steps")
    batch_size: int = param(64, min=1, help="global batch size (split across processes)")
    lr: float = param(1e-4, min=0.0, help="peak learning rate")
    optimizer: str = param("adam", choices=["adam", "adamw", "sgd", "lars", "rmsprop"])
    weight_decay: float = param(0.0, min=0.0)
    betas: list = param([0.9, 0.999], help="Adam betas")
    momentum: float = param(0.9, min=0.0, max=1.0, help="SGD momentum")
    schedule: str = param("cosine", choices=["cosine", "constant", "linear"])
    warmup_steps: int = param(0, min=0)
    min_lr_ratio: float = param(0.0, min=0.0, max=1.0, help="decay floor as a share of lr")
    grad_clip: float = param(1.0, min=0.0, help="max global grad norm; 0 disables")
    order: str = param(
        "shuffled",
        choices=["shuffled", "in_order"],
        help="each epoch's order of examples: shuffled by (seed, epoch), or the data set's own",
    )
    seed: int = param(0, min=0)
    device: str = param("auto", help="auto, cpu, cuda, cuda:N or mps")
    precision: str = param("auto", choices=["auto", "fp32", "bf16"], help="auto: bf16 on CUDA")
    memory_format: str = param(
        "auto",
        choices=["auto", "contiguous", "channels_last"],
        help="layout of conv weights and images; auto: channels_last under bf16 on a CPU",
    )
    data_device: str = param(
        "auto",
        choices=["auto", "host"],
        help="where batches are made: auto: on the training device where the data set can "
        "(procedural sprites); host: on the CPU, then copied",
    )
    compile: str = param(
        "off",
        choices=["off", "default", "reduce-overhead", "max-autotune"],
        help="torch.compile the loss's forward pass with this mode; reduce-overhead replays "
        "CUDA graphs for small, launch-bound models",
    )
    log: str = param(
        "jsonl",
        choices=["jsonl", "tensorboard", "wandb"],
        help="metrics.jsonl always; tensorboard or wandb as well, with decoder figures",
    )
    log_every: int = param(50, min=1)
    monitor_every: int = param(
        0,
        min=0,
        help="every N steps (at a log line): online kNN accuracy, normalised std and "
        "effective rank of the codes; 0: off",
    )
    checkpoint_every: int = param(500, min=1)
    keep_checkpoints: int = param(2, min=1)


@dataclass
class RunConfig:
    """Everything that defines a run; saved as the run directory's config.yaml."""

    method: str
    data: str
    train: TrainConfig
    model: Any  # the method's own Config dataclass

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "data": self.data,
            "train": dataclasses.asdict(self.train),
            "model": dataclasses.asdict(self.model),
        }

    def save(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------------------------
# coercion and validation


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value, tp):
    """Coerce a YAML-parsed value to the field's annotated type, or raise ConfigError."""
    if isinstance(tp, str):
        tp = {"int": int, "float": float, "str": str, "bool": bool, "list": list}.get(tp, Any)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if tp is list or origin is list:
        if isinstance(value, list | tuple):
            return list(value)
        raise ConfigError(f"{key}: expected a list like [1, 2], got {value!r}")
    raise ConfigError(f"{key}: cannot set a value of type {_type_name(tp)}")


def validate(obj, prefix: str) -> None:
    """Check types, bounds and choices of every field of a config dataclass."""
    for f in fields(obj):
        key = f"{prefix}.{f.name}"
        value = _coerce(key, getattr(obj, f.name), f.type)
        setattr(obj, f.name, value)
        meta = f.metadata
        if value is None:
            continue
        if meta.get("choices") is not None and value not in meta["choices"]:
            valid = ", ".join(map(str, meta["choices"]))
            raise ConfigError(f"{key}: {value!r} is not valid; choose from: {valid}")
        if meta.get("min") is not None and value < meta["min"]:
            raise ConfigError(f"{key}: must be >= {meta['min']}, got {value!r}")
        if meta.get("max") is not None and value > meta["max"]:
            raise ConfigError(f"{key}: must be <= {meta['max']}, got {value!r}")
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"{prefix}.{e}") from None


def _apply(obj, values: dict, prefix: str) -> None:
    names = {f.name: f for f in fields(obj)}
    for k, v in values.items():
        if k not in names:
            raise ConfigError(
                f"unknown key {prefix}.{k}; valid keys: {', '.join(sorted(names)) or '(none)'}"
            )
        setattr(obj, k, _coerce(f"{prefix}.{k}", v, names[k].type))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.steps=10", "beta=4"]`` -> ``{"train.steps": 10, "beta": 4}`` (YAML scalars)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            raise ConfigError(f"{key}: cannot parse value {raw!r}") from None
    return out


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config file {p} is not valid YAML{where}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file {p} must hold a mapping of keys, got {type(loaded).__name__}"
        )
    return loaded


TOP_LEVEL_KEYS = ("data", "method", "model", "train")


def check_top_level(file_values: dict) -> None:
    """A config file holds only method, data, train and model."""
    unknown = set(file_values) - set(TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {sorted(unknown)[0]}; valid top-level keys: {', '.join(TOP_LEVEL_KEYS)}"
        )


def resolve(
    method: type,
    data: str,
    file_values: dict | None = None,
    overrides: dict | None = None,
) -> RunConfig:
    """The full, validated run config of ``method`` (a method class: its ``registry_name``,
    ``Config`` and ``train_defaults``) on the data spec ``data``: defaults, then the method's
    optimiser settings, the file's ``train`` and ``model`` sections, then ``overrides``
    (``{"train.lr": 1e-3, "beta": 4}``). Raises ConfigError on anything wrong."""
    file_values = dict(file_values or {})
    overrides = dict(overrides or {})
    check_top_level(file_values)
    if not data:
        raise ConfigError("no data set given (--data NAME)")

    train = TrainConfig()
    _apply(train, method.train_defaults, "train")
    model = method.Config()
    preset = _chosen_preset(file_values, overrides) if isinstance(model, Presets) else None
    if preset is not None:
        if preset not in model.PRESETS:
            raise ConfigError(
                f"model.preset: unknown preset {preset!r}; choose from {', '.join(model.PRESETS)}"
            )
        _apply(model, {**model.PRESETS[preset], "preset": preset}, "model")
    for section, target, prefix in (("train", train, "train"), ("model", model, "model")):
        values = file_values.get(section) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{section} in the config file must be a mapping")
        _apply(target, values, prefix)

    model_keys = {f.name for f in fields(model)}
    train_keys = {f.name for f in fields(train)}
    for key, value in overrides.items():
        section, dot, name = key.partition(".")
        if not dot:  # bare key: the method's own settings first, then the trainer's
            name = key
            if key in model_keys:
                section = "model"
            elif key in train_keys:
                section = "train"
            else:
                raise ConfigError(
                    f"unknown key {key}; valid keys: "
                    + ", ".join(sorted(f"model.{k}" for k in model_keys))
                    + ", "
                    + ", ".join(sorted(f"train.{k}" for k in train_keys))
                )
        if section == "model":
            _apply(model, {name: value}, "model")
        elif section == "train":
            _apply(train, {name: value}, "train")
        else:
            raise ConfigError(f"unknown section in {key}; use train.KEY or model.KEY")

    validate(train, "train")
    validate(model, "model")
    if len(train.betas) != 2 or not all(0 <= b < 1 for b in train.betas):
        raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {train.betas!r}")
    return RunConfig(method=method.registry_name, data=data, train=train, model=model)
