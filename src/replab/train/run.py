"""A run directory and the trained model in it: ``replab.load(run_dir).encode(x)``.

Layout: ``config.yaml`` (resolved config), ``data.json`` (the input shape the model was built
for, so loading needs no data), ``model.safetensors`` (final weights), ``checkpoint/``
(resumable state), ``metrics.jsonl``, ``eval.json``, ``figures/``, ``report.html``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from replab.config import ConfigError, RunConfig, from_dict, load_yaml
from replab.data.base import DataInfo, Dataset
from replab.train.io import atomic_write_json, checkpoint_dirs, load_tensors


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
    from replab.registry import method_class

    return method_class(cfg.method)(cfg.model, info)


def save_data_info(run_dir: Path, info: DataInfo) -> None:
    atomic_write_json(Path(run_dir) / "data.json", dataclasses.asdict(info))


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

    @torch.no_grad()
    def encode(self, x, batch_size: int = 1024) -> torch.Tensor:
        """Representation of ``x`` (tensor or array, [n, ...]), in eval mode, batched."""
        self.model.eval()
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        outs = [
            self.model.encode(x[i : i + batch_size].to(self.device)).float().cpu()
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(outs) if outs else torch.empty(0)

    @torch.no_grad()
    def embed(self, data: Dataset, batch_size: int = 1024) -> np.ndarray:
        """Representation of every example of a data set, [len(data), dim] float32."""
        self.model.eval()
        chunks = []
        for i in range(0, len(data), batch_size):
            x = data.get_batch(np.arange(i, min(i + batch_size, len(data))))["x"]
            chunks.append(self.model.encode(x.to(self.device)).float().cpu().numpy())
        return np.concatenate(chunks).astype(np.float32)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, method={self.config.method!r}, data={self.config.data!r})"


def load(run_dir: str | Path, device: str = "auto", checkpoint: bool = False) -> Run:
    """Load a run's final weights (or, with ``checkpoint=True``, its latest checkpoint)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = from_dict(load_yaml(run_dir / "config.yaml"))
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
