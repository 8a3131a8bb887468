"""A run directory and the trained model in it: ``replab.load(run_dir).encode(x)``.

Layout: ``config.yaml`` (resolved config), ``data.json`` (the input shape the model was built
for, so loading needs no data), ``model.safetensors`` (final weights), ``checkpoint/``
(resumable state), ``metrics.jsonl``, ``eval.json``, ``figures/``, ``report.html``. Everything
that reads or writes one of these files by name lives here and in ``run.checkpoints``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from replab.config import ConfigError, RunConfig, load_yaml, resolve
from replab.data.base import DataInfo, Dataset
from replab.files import atomic_write_json
from replab.methods import method_class
from replab.methods.capabilities import Encoder, encode_in_batches, model_encoder, slices
from replab.run.checkpoints import checkpoint_dirs, load_tensors


def pick_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an unavailable choice is refused."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device: {name!r} is not valid; use auto, cpu, cuda or mps"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device: mps was asked for but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"train.device: {name!r} is not valid; use auto, cpu, cuda or mps")
    return dev


def build_model(cfg: RunConfig, info: DataInfo):
    """The method's model for data of ``info``, freshly initialised (from torch's global RNG)."""
    return method_class(cfg.method)(cfg.model, info)


def save_data_info(run_dir: Path, info: DataInfo) -> None:
    atomic_write_json(Path(run_dir) / "data.json", dataclasses.asdict(info))


def prepare_run_dir(out: Path, resume: bool) -> None:
    """Refuse to write a new run over anything (``resume`` needs a run directory instead)."""
    if resume:
        if not (out / "config.yaml").is_file():
            raise ConfigError(f"cannot resume: {out} is not a run directory (no config.yaml)")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"{out} already exists and is not empty; pass --resume to continue that run "
            "or choose another --out"
        )


# The run directory's format: written to ``replab.json`` by every new run. A directory without
# that file is format 1 (replab 0.1, and 0.2 before the file existed).
RUN_FORMAT = 2
REPLAB_OF_FORMAT = {1: "0.1", 2: "0.2"}


def _from_format_1(values: dict) -> dict:
    """replab 0.1 -> 0.2: no setting was renamed or removed (0.1's method and trainer configs,
    commit 0171d7c, against 0.2's); the settings 0.2 added take their defaults."""
    return values


# MIGRATIONS[v] turns the config values of a format-v run into format v + 1's. A key renamed or
# removed in a release gets its entry here, so that older runs still load.
MIGRATIONS = {1: _from_format_1}


def run_format(run_dir: Path) -> int:
    """The format a run directory was written in (1 when it says none)."""
    path = Path(run_dir) / "replab.json"
    if not path.is_file():
        return 1
    try:
        version = json.loads(path.read_text())["run_format"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{run_dir}: replab.json is unreadable or names no run_format") from None
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{run_dir}: replab.json's run_format {version!r} is not valid")
    return version


def write_run_files(out: Path, cfg: RunConfig, data: Dataset) -> None:
    """What a new run directory holds before training: its format, config, input shape, data
    artifacts."""
    atomic_write_json(out / "replab.json", {"run_format": RUN_FORMAT})
    cfg.save(out / "config.yaml")
    save_data_info(out, data.info)
    data.save_artifacts(out)


def read_config(run_dir: Path) -> RunConfig:
    """A run's saved config.yaml, brought to the current format (``MIGRATIONS``) and validated
    again (no defaults re-applied). Its data entry is kept as written: a run may have been
    trained on a data set built in Python, or on files this machine does not have, and loading
    it needs neither. A run this replab cannot read is refused in one line naming its format."""
    version = run_format(run_dir)
    if version > RUN_FORMAT:
        raise ConfigError(
            f"{run_dir}: written by a newer replab (run format {version}; this replab reads "
            f"formats up to {RUN_FORMAT}): upgrade replab to load it"
        )
    values = load_yaml(Path(run_dir) / "config.yaml")
    if not values.get("method"):
        raise ConfigError(f"{run_dir}: config.yaml names no method")
    for v in range(version, RUN_FORMAT):
        values = MIGRATIONS[v](values)
    try:
        return resolve(method_class(values["method"]), values.get("data"), values)
    except ConfigError as e:
        if version == RUN_FORMAT:
            raise
        raise ConfigError(
            f"{run_dir}: a run of format {version} (replab {REPLAB_OF_FORMAT[version]}) that no "
            f"migration brings to format {RUN_FORMAT}: {e}. Load it with replab "
            f"{REPLAB_OF_FORMAT[version]}, or retrain it"
        ) from None


def read_data_info(run_dir: Path) -> DataInfo:
    d = json.loads((Path(run_dir) / "data.json").read_text())
    d["shape"] = tuple(d["shape"])
    return DataInfo(**d)


class Run:
    """A trained (or training) model with its config and directory."""

    def __init__(self, run_dir: Path, config: RunConfig, model: torch.nn.Module):
        self.dir = Path(run_dir)
        self.config = config
        self.model = model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def has_encoder(self) -> bool:
        """Whether the model learns a representation (a plain GAN does not)."""
        return isinstance(self.model, Encoder)

    def encode(self, x, batch_size: int = 1024) -> torch.Tensor:
        """Representation of ``x`` (tensor or array, [n, ...]), in eval mode, batched."""
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        codes = encode_in_batches(model_encoder(self.model), slices(x, batch_size))
        return torch.from_numpy(codes)

    def embed(self, data: Dataset, batch_size: int = 1024) -> np.ndarray:
        """Representation of every example of a data set, [len(data), dim] float32."""
        batches = (
            data.get_batch(np.arange(i, min(i + batch_size, len(data))))["x"]
            for i in range(0, len(data), batch_size)
        )
        return encode_in_batches(model_encoder(self.model), batches)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, method={self.config.method!r}, data={self.config.data!r})"


def load(run_dir: str | Path, device: str = "auto", checkpoint: bool = False) -> Run:
    """Load a run's final weights (or, with ``checkpoint=True``, its latest checkpoint)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = read_config(run_dir)
    info = read_data_info(run_dir)
    model = build_model(cfg, info)
    if checkpoint:
        ckpts = checkpoint_dirs(run_dir / "checkpoint")
        if not ckpts:
            raise FileNotFoundError(f"{run_dir} has no checkpoint")
        weights = ckpts[-1] / "model.safetensors"
    else:
        weights = run_dir / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(
                f"{run_dir} has no model.safetensors (training unfinished? try checkpoint=True)"
            )
    model.load_state_dict(load_tensors(weights))
    model.to(pick_device(device)).eval()
    return Run(run_dir, cfg, model)
