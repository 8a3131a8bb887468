"""The one training loop, for every method (nanoGPT-sized on purpose).

Batches are drawn by index from a stream of per-epoch permutations fixed by (seed, epoch), so the
batch of step s is a pure function of (seed, s): resuming needs no sampler state, and under
``torchrun`` every process takes its own slice of the same global batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from replab.config import ConfigError, RunConfig, TrainConfig
from replab.data import make_dataset
from replab.train import distributed as dist
from replab.train.io import (
    atomic_write_text,
    checkpoint_dirs,
    model_state,
    read_checkpoint,
    save_tensors,
    write_checkpoint,
)
from replab.train.run import Run, build_model, pick_device, save_data_info


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a run directory in the way, ...)."""


class BatchIndices:
    """Global batch indices for step s: consecutive slices of per-epoch permutations."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._epoch = epoch
        return self._perm

    def __call__(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        out, pos = [], start
        while pos < start + self.batch_size:
            epoch, offset = divmod(pos, self.n)
            take = min(self.n - offset, start + self.batch_size - pos)
            out.append(self._permutation(epoch)[offset : offset + take])
            pos += take
        return np.concatenate(out)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warmup to ``lr``, then constant, cosine or linear decay to ``min_lr_ratio * lr``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr_ratio * cfg.lr
    if cfg.schedule == "linear":
        return floor + (cfg.lr - floor) * (1.0 - progress)
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def learning_rate_and_scale(cfg: TrainConfig, step: int) -> tuple[float, float]:
    """The step's learning rate and its ratio to the peak, which every optimiser's own base
    rate is multiplied by (a discriminator may train at another rate on the same schedule)."""
    lr = learning_rate(cfg, step)
    return lr, (lr / cfg.lr if cfg.lr > 0 else 0.0)


def autocast_for(cfg: TrainConfig, device: torch.device):
    """bf16 autocast where ``train.precision`` asks for it (``auto``: on CUDA only), else none."""
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def memory_format_for(cfg: TrainConfig, device: torch.device) -> torch.memory_format:
    """The layout of 4-D weights and images: channels-last where it measured faster, PyTorch's
    default elsewhere. Only the layout changes, not the computation (results equal to float
    rounding). Measured on a 2-core AMX CPU (beta_vae on sprites, batch 64): under bf16
    autocast, channels-last ran 1.27x the samples/s of bf16 alone, as oneDNN's bf16 kernels
    want NHWC; in fp32 it was within noise (0.82-1.15x), so ``auto`` leaves fp32 alone. Untested
    on GPUs, so ``auto`` does not switch it on there."""
    if cfg.memory_format == "channels_last":
        return torch.channels_last
    if cfg.memory_format == "auto" and device.type == "cpu" and cfg.precision == "bf16":
        return torch.channels_last
    return torch.contiguous_format


def batch_to(batch: dict, device: torch.device, memory_format: torch.memory_format) -> dict:
    """A batch on ``device``, images (4-D tensors) turned channels-last when that is the layout;
    otherwise every tensor keeps the layout the data set gave it, as before the setting existed."""

    def layout(v: torch.Tensor) -> torch.memory_format:
        channels_last = v.ndim == 4 and memory_format == torch.channels_last
        return torch.channels_last if channels_last else torch.preserve_format

    return {k: v.to(device, non_blocking=True, memory_format=layout(v)) for k, v in batch.items()}


def seeded_model(cfg: RunConfig, info, device: torch.device):
    """The method's model built right after ``torch.manual_seed(train.seed)``, as every run
    builds it; ``model.seed`` is set for randomness a method draws as a function of (seed, step)."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, info).to(device)
    model.seed = cfg.train.seed
    return model


def write_run_files(out: Path, cfg: RunConfig, data) -> None:
    """What a new run directory holds before training: config, input shape, data artifacts."""
    cfg.save(out / "config.yaml")
    save_data_info(out, data.info)
    data.save_artifacts(out)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _prepare_run_dir(out: Path, resume: bool) -> None:
    if resume:
        if not (out / "config.yaml").is_file():
            raise ConfigError(f"cannot resume: {out} is not a run directory (no config.yaml)")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"{out} already exists and is not empty; pass --resume to continue that run "
            "or choose another --out"
        )


def _trim_metrics(path: Path, last_step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    kept = [
        ln
        for ln in path.read_text().splitlines()
        if ln.strip() and json.loads(ln).get("step", 0) <= last_step
    ]
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def train(
    cfg: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> Run:
    """Train ``cfg`` into the run directory ``out``; returns the Run (model in eval mode).

    ``stop_after`` ends this session after that many total steps with a checkpoint, as a
    pre-empted job would; ``resume=True`` continues from the latest checkpoint.
    """
    tcfg = cfg.train
    out = Path(out)
    device = pick_device(tcfg.device)
    dist.init_from_env(device.type)
    if dist.world_size() > 1:
        if device.type == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        if tcfg.batch_size % dist.world_size():
            raise TrainingError(
                f"train.batch_size {tcfg.batch_size} must divide among "
                f"{dist.world_size()} processes"
            )
    main = dist.is_main()
    console = console or Console(stderr=True)
    if main:
        _prepare_run_dir(out, resume)

    data = make_dataset(cfg.data).split("train")
    layout = memory_format_for(tcfg, device)
    model = seeded_model(cfg, data.info, device).to(memory_format=layout)
    groups = model.param_groups()
    optimizers, base_lr = {}, {}
    for name, group_params in groups.items():
        gcfg = dataclasses.replace(tcfg, **model.group_train_overrides.get(name, {}))
        optimizers[name] = build_optimizer(group_params, gcfg)
        base_lr[name] = gcfg.lr
    loss_key = {name: "loss" if name == "main" else f"loss_{name}" for name in groups}
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_run_files(out, cfg, data)
    dist.barrier()  # the others read the run directory only once rank 0 has checked it

    start = 0
    metrics_path = out / "metrics.jsonl"
    ckpt_root = out / "checkpoint"
    if resume:
        ckpts = checkpoint_dirs(ckpt_root)
        if not ckpts:
            raise TrainingError(f"cannot resume: {out} has no complete checkpoint")
        ck = read_checkpoint(ckpts[-1], device)
        model.load_state_dict(ck["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(ck["optimizers"][name])
        torch.set_rng_state(ck["rng"]["torch_cpu"])
        if device.type == "cuda" and "torch_cuda_0" in ck["rng"]:
            torch.cuda.set_rng_state(ck["rng"]["torch_cuda_0"], device)
        start = ck["step"]
        if main:
            _trim_metrics(metrics_path, start)
            console.print(f"resuming {out} from step {start}")
    if dist.world_size() > 1:  # each process draws its own noise after the shared init
        torch.manual_seed(tcfg.seed + 1_000_003 * dist.rank() + start)

    ddp = model
    # One optimiser: PyTorch DDP (gradients reduced during backward). Several: their gradients
    # come from separate backward passes, so they are averaged across processes explicitly.
    if dist.world_size() > 1 and len(groups) == 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    autocast = autocast_for(tcfg, device)
    sampler = BatchIndices(len(data), tcfg.batch_size, tcfg.seed)
    per_rank = tcfg.batch_size // dist.world_size()
    lo = dist.rank() * per_rank
    end = tcfg.steps if stop_after is None else min(tcfg.steps, stop_after)

    sums: dict[str, torch.Tensor] = {}
    count = 0
    bad = torch.zeros((), dtype=torch.bool, device=device)
    last_log_time, last_log_step = time.perf_counter(), start

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not (progress and main),
        transient=False,
    )
    task = bar.add_task(f"{cfg.method} on {cfg.data}", total=tcfg.steps, completed=start, status="")

    def check_finite(step: int) -> None:
        if bool(dist.all_reduce_max(bad.clone().float()).item()):
            good = checkpoint_dirs(ckpt_root)
            where = f"; the last good checkpoint is {good[-1]}" if good else ""
            raise TrainingError(
                f"loss became non-finite (NaN or inf) at or before step {step}; training "
                f"stopped{where}. Try a lower train.lr or train.grad_clip=1"
            )

    def save_checkpoint(step: int) -> None:
        check_finite(step)
        if main:
            write_checkpoint(
                ckpt_root,
                step,
                model,
                optimizers,
                {"method": cfg.method},
                keep=tcfg.keep_checkpoints,
            )
        dist.barrier()

    model.train()
    with bar, _stop_on_interrupt() as interrupt, _flush_denormals(device):
        for step in range(start, end):
            idx = sampler(step)[lo : lo + per_rank]
            batch = batch_to(data.get_batch(idx), device, layout)
            lr, scale = learning_rate_and_scale(tcfg, step)
            for name, opt in optimizers.items():
                for group in opt.param_groups:
                    group["lr"] = base_lr[name] * scale
            with autocast:
                logs = ddp(batch, step)
            loss = logs["loss"]
            _optimise(logs, groups, optimizers, loss_key, tcfg.grad_clip)

            bad |= ~torch.isfinite(loss.detach())
            for k, v in logs.items():
                v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                sums[k] = sums[k] + v if k in sums else v
            count += 1
            done = step + 1
            if done % tcfg.log_every == 0 or done == end:
                check_finite(done)
                now = time.perf_counter()
                rate = (done - last_log_step) * tcfg.batch_size / max(now - last_log_time, 1e-9)
                record = {"step": done, "lr": lr, "samples_per_s": rate}
                record.update({k: v.item() / count for k, v in sums.items()})
                if main:
                    append_jsonl(metrics_path, record)
                bar.update(
                    task, completed=done, status=f"loss {record['loss']:.4g}  {rate:,.0f} samples/s"
                )
                sums, count = {}, 0
                last_log_time, last_log_step = now, done
            if done % tcfg.checkpoint_every == 0 or done == end:
                save_checkpoint(done)
            elif interrupt["stop"]:
                save_checkpoint(done)
            if interrupt["stop"]:
                console.print(f"interrupted: checkpoint at step {done}; continue with --resume")
                raise KeyboardInterrupt

    if end == tcfg.steps:
        check_finite(end)  # a collective: every process takes part
    if end == tcfg.steps and main:
        save_tensors(
            out / "model.safetensors",
            model_state(model),
            metadata={"method": cfg.method, "steps": end},
        )
    dist.barrier()
    model.eval()
    return Run(out, cfg, model)


def _optimise(logs, groups, optimizers, loss_key, grad_clip: float) -> None:
    """One update of every optimiser from the losses of one forward pass."""
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    if len(groups) == 1:
        logs["loss"].backward()
    else:
        names = list(groups)
        for i, name in enumerate(names):
            # each player's gradient of its own loss only (inputs=): the other players' losses
            # never leak into its parameters
            logs[loss_key[name]].backward(inputs=groups[name], retain_graph=i < len(names) - 1)
        if dist.world_size() > 1:
            dist.average_gradients([p for ps in groups.values() for p in ps])
    for name, opt in optimizers.items():
        if grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(groups[name], grad_clip)
            logs["grad_norm" if name == "main" else f"grad_norm_{name}"] = norm
        opt.step()


@contextmanager
def _flush_denormals(device: torch.device):
    """Treat subnormal floats (below 1.2e-38) as zero while training on a CPU.

    Adam's running mean of squared gradients turns subnormal once a loss gets small (VQ-VAE's
    pixel MSE after a few hundred steps on sprites), and x86 CPUs compute on subnormals many times
    slower: measured, a VQ-VAE step at 96 samples/s with them and 190 without. Values that small
    are far below Adam's epsilon, so results do not change. The default (off) is restored after.
    """
    if device.type != "cpu":
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextmanager
def _stop_on_interrupt():
    """Turn the first Ctrl-C into a flag the loop checks between steps (a clean checkpoint);
    a second Ctrl-C interrupts at once."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag["stop"]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag["stop"] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
