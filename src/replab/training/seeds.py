"""Many seeds of one small model in one process: ``replab train METHOD --seeds 0-15``.

Disentangling models vary as much with the seed as with the method (Locatello et al. 2019), so a
study trains many seeds. Small models leave a GPU idle; here every seed's model is built exactly
as a single run builds it (``torch.manual_seed(seed)``, then the method's constructor), the
parameters are stacked along a new leading dimension, and one step runs every seed's loss at once
with ``torch.func.vmap`` over (parameters, batch, noise) on an accelerator, or seed after seed
over the same stacked parameters on a CPU (where vmap's grouped convolutions are slower). Adam,
AdamW and SGD are elementwise, so one optimiser over the stacked parameters is each seed's own
optimiser, and gradient clipping is done per seed.

Each seed takes its batches from its own sampler (the single run's) and its sampling noise from
its own generator, started where a single run's global generator stands after building the model.
So seed s's directory holds what ``replab train METHOD --seed s`` writes: bit for bit seed after
seed, up to the order of floating-point sums with vmap; each is an ordinary run directory (``eval``,
``report`` and ``--resume`` work on it alone).

A method takes part when its loss draws all its randomness through ``Method.draw_normal`` (it says
so with ``batched_seeds = True``) and trains one optimiser; ``vmap(randomness="error")`` refuses
any other random draw inside the step. Each seed's noise is drawn outside the step and handed to
the forward pass (``forward(batch, step, noise=...)``). The weights keep PyTorch's default layout
(``train.memory_format`` is a single run's setting).

The loop is the single run's (``training.loop.run_steps``: schedule, logs, checkpoints,
interrupts, non-finite checks); this file holds what differs, the stacking and the batched step.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from rich.console import Console
from torch.func import functional_call, vmap

from replab import distributed as dist
from replab.config import ConfigError, RunConfig
from replab.data.base import Dataset
from replab.files import append_jsonl
from replab.run import pick_device, prepare_run_dir, write_run_files
from replab.run.checkpoints import model_state, save_tensors, write_checkpoint
from replab.training.loop import (
    BatchIndices,
    Optimisers,
    Steps,
    TrainingError,
    autocast_for,
    build_optimizer,
    check_run_data,
    make_batch,
    non_finite_error,
    run_steps,
    seeded_model,
)

MAX_SEEDS = 1024


def parse_seeds(text: str) -> list[int]:
    """``"0-15"``, ``"0,3,7"`` or ``"0-3,9"`` -> sorted distinct seeds; ConfigError otherwise."""
    seeds: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ConfigError(f"--seeds: {text!r} is not valid; write a range or list: 0-15, 0,3,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"--seeds: the range {part.strip()!r} runs backwards")
        if hi - lo + 1 > MAX_SEEDS:
            raise ConfigError(f"--seeds: at most {MAX_SEEDS} seeds in one process")
        seeds.update(range(lo, hi + 1))
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: at most {MAX_SEEDS} seeds in one process")
    return sorted(seeds)


class _NoiseReplay:
    """Hands a step's pre-drawn noise tensors to ``Method.draw_normal``, in order."""

    def __init__(self, noise: list[torch.Tensor]):
        self.noise, self.i = noise, 0

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        if self.i >= len(self.noise) or self.noise[self.i].shape != like.shape:
            raise TrainingError(
                "the loss drew noise of another shape or count than at the first step; "
                "--seeds needs the same draws every step"
            )
        self.i += 1
        return self.noise[self.i - 1]


class _NoiseRecorder:
    """Records the shapes ``draw_normal`` is asked for during one unbatched forward pass."""

    def __init__(self):
        self.shapes: list[tuple[torch.Size, torch.dtype]] = []

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        self.shapes.append((like.shape, like.dtype))
        return torch.zeros_like(like)


def _check_method(model, cfg: RunConfig) -> None:
    if not type(model).batched_seeds:
        raise ConfigError(
            f"{cfg.method} draws random numbers that --seeds cannot replay per seed; "
            "train its seeds one at a time with --seed"
        )
    if len(model.param_groups()) != 1:
        raise ConfigError(
            f"{cfg.method} trains {len(model.param_groups())} optimisers; --seeds batches "
            "methods with one; train its seeds one at a time with --seed"
        )
    if any(b.numel() for b in model.buffers()):
        raise ConfigError(
            f"{cfg.method} keeps running statistics (buffers) that --seeds does not batch; "
            "train its seeds one at a time with --seed"
        )


def _seed_generator(device: torch.device, seed: int) -> torch.Generator:
    """The generator a single run's sampling noise comes from, in the state it has after the
    model is built (on CUDA the model is built on the CPU, so the device's generator is fresh)."""
    g = torch.Generator(device=device)
    if device.type == "cpu":
        g.set_state(torch.get_rng_state())
    else:
        g.manual_seed(seed)
    return g


def _rng_for_checkpoint(g: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return {"torch_cpu": g.get_state()}
    return {"torch_cpu": torch.get_rng_state(), f"torch_cuda_{device.index or 0}": g.get_state()}


class SeedStack(Steps):
    """One model per seed, their parameters stacked along a new leading dimension, trained by
    one optimiser; each seed writes its own run directory."""

    def __init__(
        self,
        cfg: RunConfig,
        data: Dataset,
        seeds: list[int],
        dirs: list[Path],
        device: torch.device,
        vectorize: bool,
    ):
        self.cfg, self.device, self.vectorize = cfg.train, device, vectorize
        self.method, self.seeds, self.dirs = cfg.method, seeds, dirs
        self.title = f"{cfg.method} on {cfg.data}, {len(seeds)} seeds"
        self.resume_hint = (
            f"continue each seed with `replab train {cfg.method} --resume --out {dirs[0]}` "
            "(and the others)"
        )
        train_split = data.split("train")
        configs = [_with_seed(cfg, s) for s in seeds]
        self.models, self.generators = [], []
        for cfg_s in configs:
            self.models.append(seeded_model(cfg_s, train_split.info, device))
            self.generators.append(_seed_generator(device, cfg_s.train.seed))
            if len(self.models) == 1:
                _check_method(self.models[0], cfg)  # before building the others
        self.template = self.models[0]
        self.names = [n for n, p in self.template.named_parameters() if p.requires_grad]
        self.stacked = {
            n: torch.stack([m.get_parameter(n).detach() for m in self.models]).requires_grad_()
            for n in self.names
        }
        self.optimisers = Optimisers(
            {"main": list(self.stacked.values())}, self.cfg, self.template.group_train_overrides
        )
        for d, cfg_s in zip(dirs, configs, strict=True):
            d.mkdir(parents=True, exist_ok=True)
            write_run_files(d, cfg_s, data)
        self.data = train_split
        self.samplers = [
            BatchIndices(len(train_split), self.cfg.batch_size, s, self.cfg.order == "shuffled")
            for s in seeds
        ]
        first_batch = train_split.get_batch(self.samplers[0](0))
        self.noise_shapes = _noise_shapes(self.template, first_batch, device)
        self.autocast = autocast_for(self.cfg, device)

    def _one_seed(self, params, batch, noise, step):
        with self.autocast:
            return functional_call(
                self.template, params, (batch, step), {"noise": _NoiseReplay(noise)}
            )

    def step(self, step, lr_scale):
        parts = [make_batch(self.data, s(step), self.cfg, self.device) for s in self.samplers]
        batch = {k: torch.stack([p[k] for p in parts]).to(self.device) for k in parts[0]}
        noise = [
            torch.stack(
                [
                    torch.randn(size, generator=g, dtype=dt, device=self.device)
                    for g in self.generators
                ]
            )
            for size, dt in self.noise_shapes
        ]
        self.optimisers.set_scale(lr_scale)
        if self.vectorize:
            logs = vmap(lambda p, b, z: self._one_seed(p, b, z, step), randomness="error")(
                self.stacked, batch, noise
            )
        else:
            per_seed = [
                self._one_seed(
                    {k: v[i] for k, v in self.stacked.items()},
                    {k: v[i] for k, v in batch.items()},
                    [z[i] for z in noise],
                    step,
                )
                for i in range(len(self.seeds))
            ]
            logs = {k: torch.stack([lg[k] for lg in per_seed]) for k in per_seed[0]}
        self.optimisers.zero_grad()
        logs["loss"].sum().backward()  # seeds share no parameters: each gets its own gradient
        clip = self.optimisers.settings["main"].grad_clip
        if clip > 0:
            logs["grad_norm"] = _clip_per_seed(list(self.stacked.values()), clip)
        self.optimisers.optimizers["main"].step()
        return logs

    def check_finite(self, bad, step):
        if bad is not None and bool(bad.any()):
            which = ", ".join(str(s) for s, b in zip(self.seeds, bad.tolist(), strict=True) if b)
            raise non_finite_error(step, who=f" for seed(s) {which}")

    def write_logs(self, record, sums, count):
        means = {k: (v / count).tolist() for k, v in sums.items()}
        for i, d in enumerate(self.dirs):
            append_jsonl(d / "metrics.jsonl", record | {k: v[i] for k, v in means.items()})
        n = len(self.seeds)
        return (
            f"mean loss {sum(means['loss']) / n:.4g}  "
            f"{record['samples_per_s'] * n:,.0f} samples/s (all seeds)"
        )

    def save_checkpoint(self, step):
        gcfg = self.optimisers.settings["main"]
        full_state = self.optimisers.optimizers["main"].state_dict()
        for i, (d, model, g) in enumerate(
            zip(self.dirs, self.models, self.generators, strict=True)
        ):
            _unstack_params(model, self.stacked, i)
            opt = build_optimizer([model.get_parameter(n) for n in self.names], gcfg)
            opt.load_state_dict(_seed_slice_of_state(full_state, i))
            write_checkpoint(
                d / "checkpoint",
                step,
                model,
                {"main": opt},
                {"method": self.method},
                keep=self.cfg.keep_checkpoints,
                rng=_rng_for_checkpoint(g, self.device),
            )

    def save_final(self, step):
        for i, (d, model) in enumerate(zip(self.dirs, self.models, strict=True)):
            _unstack_params(model, self.stacked, i)
            save_tensors(
                d / "model.safetensors",
                model_state(model),
                metadata={"method": self.method, "steps": step},
            )


def train_seeds(
    cfg: RunConfig,
    data: Dataset,
    seeds: list[int],
    out: str | Path,
    *,
    stop_after: int | None = None,
    progress: bool = True,
    console: Console | None = None,
    vectorize: bool | None = None,
) -> list[Path]:
    """Train one copy of ``cfg`` per seed on ``data`` in one loop; returns the run directories
    ``out/seed-S`` (each as ``train(cfg with train.seed=S, data, out/seed-S)`` would write it).

    ``vectorize``: one vmapped pass for all seeds (default on accelerators, where one seed leaves
    the device idle), or the seeds' passes one after another over the same stacked parameters
    (default on a CPU, where vmap's grouped convolutions are slower than the plain ones;
    ``bench_seeds`` measures both)."""
    tcfg = cfg.train
    if dist.world_size() > 1:
        raise ConfigError("--seeds runs in one process; start it without torchrun")
    if not seeds:
        raise ConfigError("--seeds: no seeds given")
    if tcfg.memory_format == "channels_last":  # stacked weights are 5-D: no channels-last layout
        raise ConfigError("--seeds keeps PyTorch's default layout; drop train.memory_format")
    if tcfg.compile != "off":  # torch.compile of vmap over functional_call is not wired here
        raise ConfigError("--seeds runs eagerly; drop train.compile")
    if tcfg.log != "jsonl":
        raise ConfigError("--seeds logs to each seed's metrics.jsonl only; drop train.log")
    check_run_data(cfg, data)
    dirs = [Path(out) / f"seed-{s}" for s in seeds]
    for d in dirs:
        prepare_run_dir(d, resume=False)
    device = pick_device(tcfg.device)
    if vectorize is None:
        vectorize = device.type != "cpu"
    stack = SeedStack(cfg, data, seeds, dirs, device, vectorize)
    end = tcfg.steps if stop_after is None else min(tcfg.steps, stop_after)
    run_steps(stack, 0, end, progress=progress, console=console)
    return dirs


def _with_seed(cfg: RunConfig, seed: int) -> RunConfig:
    cfg = copy.deepcopy(cfg)
    cfg.train.seed = seed
    return cfg


def _noise_shapes(model, batch: dict[str, torch.Tensor], device) -> list:
    """The (shape, dtype) of every ``draw_normal`` call of one step, in order: one unbatched
    forward pass, without gradients, that draws nothing from any generator."""
    recorder = _NoiseRecorder()
    with torch.no_grad():
        model({k: v.to(device) for k, v in batch.items()}, 0, noise=recorder)
    return recorder.shapes


@torch.no_grad()
def _clip_per_seed(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` for each seed's slice of the stacked gradients; returns the norms."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


@torch.no_grad()
def _unstack_params(model, stacked: dict[str, torch.Tensor], i: int) -> None:
    """Copy seed i's slice of the stacked parameters into its own model."""
    for name, value in stacked.items():
        model.get_parameter(name).copy_(value[i])


def _seed_slice_of_state(full: dict, i: int) -> dict:
    """Seed i's optimiser state from the stacked optimiser's state dict: per-parameter tensors
    are sliced, scalars (Adam's step) shared."""
    state = {
        pid: {
            k: v[i].clone() if torch.is_tensor(v) and v.dim() > 0 else copy.deepcopy(v)
            for k, v in st.items()
        }
        for pid, st in full["state"].items()
    }
    return {"state": state, "param_groups": full["param_groups"]}
