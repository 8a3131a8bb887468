"""Pickle-free weights and checkpoints: safetensors for tensors, JSON for the rest.

A checkpoint is a folder ``checkpoint/step-N/`` written whole under a temporary name and renamed
into place, so a crash never leaves half of one; its files go through ``replab.files``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from replab.files import atomic_path, atomic_write_json, fsync_dir


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None):
    """A safetensors file written atomically (tensors made contiguous and moved to the CPU)."""
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})


def load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path), device=str(device))


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with shared storage de-duplicated names kept (safetensors refuses aliases)."""
    state = model.state_dict()
    return {k: v.clone() if _shares(v, state, k) else v for k, v in state.items()}


def _shares(v: torch.Tensor, state: dict, key: str) -> bool:
    ptr = v.untyped_storage().data_ptr()
    return any(
        k != key and t.untyped_storage().data_ptr() == ptr for k, t in state.items() if t.numel()
    )


# ---------------------------------------------------------------------------------------------
# optimizer state <-> (tensors, JSON)


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


# ---------------------------------------------------------------------------------------------
# checkpoints: checkpoint/step-00000500/{model,optimizer-NAME,rng}.safetensors + state.json


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (incomplete ones keep a '.tmp-' prefix)."""
    root = Path(root)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def write_checkpoint(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    extra_state: dict,
    keep: int,
    rng: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a whole checkpoint folder under a temporary name, then rename it into place.

    ``rng``: the generator states to resume from (default: the process's global ones)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_tensors(tmp / "model.safetensors", model_state(model))
    opt_meta = {}
    for name, opt in optimizers.items():
        opt_tensors, opt_meta[name] = optimizer_to_flat(opt)
        save_tensors(tmp / f"optimizer-{name}.safetensors", opt_tensors)
    if rng is None:
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                rng[f"torch_cuda_{i}"] = s
    save_tensors(tmp / "rng.safetensors", rng)
    atomic_write_json(tmp / "state.json", {"step": step, "optimizer": opt_meta, **extra_state})
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    for old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(path: Path, device) -> dict:
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    return {
        "step": int(state["step"]),
        "state": state,
        "model": load_tensors(path / "model.safetensors", device),
        "optimizers": {
            name: optimizer_from_flat(
                load_tensors(path / f"optimizer-{name}.safetensors", device), meta
            )
            for name, meta in state["optimizer"].items()
        },
        "rng": load_tensors(path / "rng.safetensors"),
    }
