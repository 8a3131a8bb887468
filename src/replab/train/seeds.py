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
any other random draw inside the step.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import time
from pathlib import Path

import torch
from rich.console import Console
from torch.func import functional_call, vmap

from replab.config import ConfigError, RunConfig
from replab.data import make_dataset
from replab.train import distributed as dist
from replab.train.io import model_state, save_tensors, write_checkpoint
from replab.train.loop import (
    BatchIndices,
    TrainingError,
    _flush_denormals,
    _prepare_run_dir,
    _stop_on_interrupt,
    build_optimizer,
    learning_rate,
)
from replab.train.run import build_model, pick_device, save_data_info

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


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


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


def train_seeds(
    cfg: RunConfig,
    seeds: list[int],
    out: str | Path,
    *,
    stop_after: int | None = None,
    progress: bool = True,
    console: Console | None = None,
    vectorize: bool | None = None,
) -> list[Path]:
    """Train one copy of ``cfg`` per seed in one loop; returns the run directories ``out/seed-S``
    (each as ``train(cfg with train.seed=S, out/seed-S)`` would write it).

    ``vectorize``: one vmapped pass for all seeds (default on accelerators, where one seed leaves
    the device idle), or the seeds' passes one after another over the same stacked parameters
    (default on a CPU: measured on 2 cores, 4 vmapped beta_vae seeds ran at 0.62x the images/s of
    one seed, the grouped convolutions being slower there than the plain ones)."""
    tcfg = cfg.train
    if dist.world_size() > 1:
        raise ConfigError("--seeds runs in one process; start it without torchrun")
    if not seeds:
        raise ConfigError("--seeds: no seeds given")
    out = Path(out)
    dirs = [seed_dir(out, s) for s in seeds]
    for d in dirs:
        _prepare_run_dir(d, resume=False)
    device = pick_device(tcfg.device)
    if vectorize is None:
        vectorize = device.type != "cpu"
    console = console or Console(stderr=True)
    data = make_dataset(cfg.data).split("train")

    models, gens, configs = [], [], []
    for s in seeds:
        cfg_s = copy.deepcopy(cfg)
        cfg_s.train.seed = s
        torch.manual_seed(s)
        model = build_model(cfg_s, data.info).to(device)
        model.seed = s
        _check_method(model, cfg_s)
        models.append(model)
        gens.append(_seed_generator(device, s))
        configs.append(cfg_s)
    template = models[0]
    names = [n for n, p in template.named_parameters() if p.requires_grad]
    stacked = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_()
        for n in names
    }
    gcfg = dataclasses.replace(tcfg, **template.group_train_overrides.get("main", {}))
    optimizer = build_optimizer(list(stacked.values()), gcfg)
    # each seed's own optimiser, in a single run's parameter order: filled from the stack only
    # when a checkpoint is written
    per_seed_optimizers = [
        build_optimizer([dict(m.named_parameters())[n] for n in names], gcfg) for m in models
    ]

    for d, cfg_s in zip(dirs, configs, strict=True):
        d.mkdir(parents=True, exist_ok=True)
        cfg_s.save(d / "config.yaml")
        save_data_info(d, data.info)
        data.save_artifacts(d)

    samplers = [BatchIndices(len(data), tcfg.batch_size, s) for s in seeds]

    def batch_of(step: int) -> dict[str, torch.Tensor]:
        parts = [data.get_batch(sampler(step)) for sampler in samplers]
        return {k: torch.stack([p[k] for p in parts]).to(device) for k in parts[0]}

    # which noise the loss draws: one unbatched forward pass of seed 0's model on its batch
    recorder = _NoiseRecorder()
    template._noise_source = recorder
    try:
        with torch.no_grad():
            first = data.get_batch(samplers[0](0))
            template({k: v.to(device) for k, v in first.items()}, 0)
    finally:
        template._noise_source = None

    use_bf16 = tcfg.precision == "bf16" or (tcfg.precision == "auto" and device.type == "cuda")

    def one_seed(params, batch, noise, step):
        template._noise_source = _NoiseReplay(noise)
        try:
            if use_bf16:
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                    return functional_call(template, params, (batch, step))
            return functional_call(template, params, (batch, step))
        finally:
            template._noise_source = None

    def save_checkpoints(step: int) -> None:
        _check_finite(bad, seeds, step)
        for i, (d, model, opt, g) in enumerate(
            zip(dirs, models, per_seed_optimizers, gens, strict=True)
        ):
            _unstack_into(model, opt, stacked, optimizer, i)
            write_checkpoint(
                d / "checkpoint",
                step,
                model,
                {"main": opt},
                {"method": cfg.method},
                keep=tcfg.keep_checkpoints,
                rng=_rng_for_checkpoint(g, device),
            )

    end = tcfg.steps if stop_after is None else min(tcfg.steps, stop_after)
    n = len(seeds)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    bad = torch.zeros(n, dtype=torch.bool, device=device)
    last_time, last_step = time.perf_counter(), 0
    status = _status_printer(console, progress, cfg, n, tcfg.steps)
    with _stop_on_interrupt() as interrupt, _flush_denormals(device):
        for step in range(end):
            batch = batch_of(step)
            noise = [
                torch.stack([torch.randn(size, generator=g, dtype=dt, device=device) for g in gens])
                for size, dt in recorder.shapes
            ]
            lr = learning_rate(tcfg, step)
            for group in optimizer.param_groups:
                group["lr"] = gcfg.lr * (lr / tcfg.lr if tcfg.lr > 0 else 0.0)
            if vectorize:
                logs = vmap(lambda p, b, z, s=step: one_seed(p, b, z, s), randomness="error")(
                    stacked, batch, noise
                )
            else:
                per_seed = [
                    one_seed(
                        {k: v[i] for k, v in stacked.items()},
                        {k: v[i] for k, v in batch.items()},
                        [z[i] for z in noise],
                        step,
                    )
                    for i in range(n)
                ]
                logs = {k: torch.stack([lg[k] for lg in per_seed]) for k in per_seed[0]}
            optimizer.zero_grad(set_to_none=True)
            logs["loss"].sum().backward()  # seeds share no parameters: each gets its own gradient
            if gcfg.grad_clip > 0:
                logs["grad_norm"] = _clip_per_seed(list(stacked.values()), gcfg.grad_clip)
            optimizer.step()

            bad |= ~torch.isfinite(logs["loss"].detach())
            for k, v in logs.items():
                v = v.detach().float()
                sums[k] = sums[k] + v if k in sums else v
            count += 1
            done = step + 1
            if done % tcfg.log_every == 0 or done == end:
                _check_finite(bad, seeds, done)
                now = time.perf_counter()
                rate = (done - last_step) * tcfg.batch_size / max(now - last_time, 1e-9)
                for i, d in enumerate(dirs):
                    record = {"step": done, "lr": lr, "samples_per_s": rate}
                    record.update({k: v[i].item() / count for k, v in sums.items()})
                    with open(d / "metrics.jsonl", "a") as f:
                        f.write(json.dumps(record) + "\n")
                status(done, sums["loss"].mean().item() / count, rate * n)
                sums, count = {}, 0
                last_time, last_step = now, done
            if done % tcfg.checkpoint_every == 0 or done == end or interrupt["stop"]:
                save_checkpoints(done)
            if interrupt["stop"]:
                console.print(
                    f"interrupted: checkpoints at step {done}; continue each seed with "
                    f"`replab train {cfg.method} --resume --out {dirs[0]}` (and the others)"
                )
                raise KeyboardInterrupt

    if end == tcfg.steps:
        _check_finite(bad, seeds, end)
        for i, (d, model) in enumerate(zip(dirs, models, strict=True)):
            _unstack_into(model, None, stacked, None, i)
            save_tensors(
                d / "model.safetensors",
                model_state(model),
                metadata={"method": cfg.method, "steps": end},
            )
    return dirs


def _check_finite(bad: torch.Tensor, seeds: list[int], step: int) -> None:
    if bool(bad.any()):
        which = ", ".join(str(s) for s, b in zip(seeds, bad.tolist(), strict=True) if b)
        raise TrainingError(
            f"loss became non-finite (NaN or inf) for seed(s) {which} at or before step {step}; "
            "training stopped. Try a lower train.lr or train.grad_clip=1"
        )


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
def _unstack_into(model, opt, stacked, stacked_opt, i: int) -> None:
    """Copy seed i's slice of the stacked parameters (and optimiser state) into its own model."""
    params = dict(model.named_parameters())
    for name, value in stacked.items():
        params[name].copy_(value[i])
    if opt is None:
        return
    full = stacked_opt.state_dict()
    state = {
        pid: {
            k: v[i].clone() if torch.is_tensor(v) and v.dim() > 0 else copy.deepcopy(v)
            for k, v in st.items()
        }
        for pid, st in full["state"].items()
    }
    opt.load_state_dict({"state": state, "param_groups": full["param_groups"]})


def _status_printer(console: Console, progress: bool, cfg: RunConfig, n: int, total: int):
    def show(done: int, mean_loss: float, rate: float) -> None:
        if progress:
            console.print(
                f"{cfg.method} x{n} seeds  step {done}/{total}  mean loss {mean_loss:.4g}  "
                f"{rate:,.0f} samples/s (all seeds)",
                highlight=False,
            )

    return show
