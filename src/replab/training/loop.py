"""The one training loop, for every method (nanoGPT-sized on purpose).

Batches are drawn by index from a stream of per-epoch permutations fixed by (seed, epoch), so the
batch of step s is a pure function of (seed, s): resuming needs no sampler state, and under
``torchrun`` every process takes its own slice of the same global batch.

:func:`run_steps` is the loop itself: the schedule, logging, checkpoints, interrupts and the
non-finite check. What one step does is a :class:`Steps` object's business: :class:`SingleRun`
here (one model, its optimisers, DDP), ``training.seeds.SeedStack`` for many seeds at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from replab import distributed as dist
from replab.config import ConfigError, RunConfig, TrainConfig
from replab.data.base import Dataset
from replab.files import append_jsonl, atomic_write_text
from replab.methods import method_class
from replab.methods.base import SelfUpdating
from replab.methods.capabilities import Encoder
from replab.run import Run, build_model, pick_device, prepare_run_dir, write_run_files
from replab.run.checkpoints import (
    checkpoint_dirs,
    model_state,
    read_checkpoint,
    save_tensors,
    write_checkpoint,
)
from replab.training.lars import LARS
from replab.training.monitors import Monitors
from replab.training.sinks import decoder_figures, open_sink


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a run directory in the way, ...)."""


class BatchIndices:
    """Global batch indices for step s: consecutive slices of per-epoch permutations (or of
    0..n-1 every epoch when not ``shuffle``: word2vec reads its corpus in order)."""

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool = True):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
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
    """The layout of 4-D weights and images: channels-last where it is known to pay, PyTorch's
    default elsewhere. Only the layout changes, not the computation (results equal to float
    rounding). ``auto`` takes channels-last under bf16 on a CPU, as oneDNN's bf16 kernels want
    NHWC (``bench_train`` measures both layouts); fp32 and GPUs, where it has not been shown
    to pay, keep the default."""
    if cfg.memory_format == "channels_last":
        return torch.channels_last
    if cfg.memory_format == "auto" and device.type == "cpu" and cfg.precision == "bf16":
        return torch.channels_last
    return torch.contiguous_format


def make_batch(data: Dataset, idx: np.ndarray, cfg: TrainConfig, device: torch.device) -> dict:
    """The batch at ``idx``, made on the training device where ``train.data_device`` allows and
    the data set can (``Dataset.get_batch_on``), else on the CPU (moved by ``batch_to``)."""
    if cfg.data_device == "auto" and device.type != "cpu":
        return data.get_batch_on(idx, device)
    return data.get_batch(idx)


def compiled(forward: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """``forward`` under ``torch.compile`` in ``train.compile``'s mode, or as it is (``off``).
    The weights stay the module's own: checkpoints and the saved model are the same either way.
    A compiled step differs from an eager one by float rounding and, in methods that draw
    noise inside the forward pass, by the noise itself (Inductor has its own generator)."""
    if cfg.compile == "off":
        return forward
    return torch.compile(forward, mode=cfg.compile)


def begin_step(cfg: TrainConfig, device: torch.device) -> None:
    """Tell CUDA-graph replay (``train.compile=reduce-overhead``) that a new step begins, so
    that the last step's outputs may be overwritten."""
    if cfg.compile == "reduce-overhead" and device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


def batch_to(batch: dict, device: torch.device, memory_format: torch.memory_format) -> dict:
    """A batch on ``device``, images (4-D tensors) turned channels-last when that is the layout;
    otherwise every tensor keeps the layout the data set gave it."""

    def layout(v: torch.Tensor) -> torch.memory_format:
        channels_last = v.ndim == 4 and memory_format == torch.channels_last
        return torch.channels_last if channels_last else torch.preserve_format

    return {k: v.to(device, non_blocking=True, memory_format=layout(v)) for k, v in batch.items()}


def seeded_model(cfg: RunConfig, info, device: torch.device):
    """The method's model built right after ``torch.manual_seed(train.seed)``, as every run
    builds it; ``model.seed`` is set for randomness a method draws as a function of (seed, step),
    ``model.total_steps`` for schedules a method runs itself."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, info).to(device)
    model.seed = cfg.train.seed
    model.total_steps = cfg.train.steps
    return model


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "lars":
        return LARS(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class Optimisers:
    """One optimiser per parameter group of a method (``Method.param_groups``), each with the
    trainer's settings changed by the method's ``group_train_overrides``, all on one schedule."""

    def __init__(self, groups: dict[str, list], cfg: TrainConfig, overrides: dict[str, dict]):
        self.groups = groups
        self.settings = {
            name: dataclasses.replace(cfg, **overrides.get(name, {})) for name in groups
        }
        self.optimizers = {
            name: build_optimizer(params, self.settings[name]) for name, params in groups.items()
        }

    def set_scale(self, scale: float) -> None:
        """Every optimiser at ``scale`` times its own base rate."""
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.settings[name].lr * scale

    def zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def loss_key(self, name: str) -> str:
        """The loss entry group ``name`` minimises: ``loss``, or ``loss_NAME`` (a second player)."""
        return "loss" if name == "main" else f"loss_{name}"


def optimise(logs: dict[str, torch.Tensor], opts: Optimisers) -> None:
    """One update of every optimiser from the losses of one forward pass (each group's gradient
    of its own loss only); gradient norms before clipping are added to ``logs``."""
    opts.zero_grad()
    if len(opts.groups) == 1:
        logs["loss"].backward()
    else:
        names = list(opts.groups)
        for i, name in enumerate(names):
            # each player's gradient of its own loss only (inputs=): the other players'
            # losses never leak into its parameters
            logs[opts.loss_key(name)].backward(
                inputs=opts.groups[name], retain_graph=i < len(names) - 1
            )
        if dist.world_size() > 1:
            dist.average_gradients([p for ps in opts.groups.values() for p in ps])
    for name, opt in opts.optimizers.items():
        clip = opts.settings[name].grad_clip
        if clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(opts.groups[name], clip)
            logs["grad_norm" if name == "main" else f"grad_norm_{name}"] = norm
        opt.step()


def check_run_data(cfg: RunConfig, data: Dataset) -> None:
    """The data set is the one the config names, and the method takes it (one-line errors)."""
    if data.spec is not None and data.spec != cfg.data:
        raise ConfigError(f"data: the config names {cfg.data} but the data set is {data.spec}")
    problem = method_class(cfg.method).data_problem(data.info, cfg.model)
    if problem is not None:
        raise ConfigError(f"data: {cfg.method} {problem}")


# ----------------------------------------------------------------------------------------------
# The loop


class Steps(ABC):
    """What :func:`run_steps` drives: the step itself, and where logs and checkpoints go. Logged
    values are scalars for one run, or one value per run along a leading dimension."""

    cfg: TrainConfig
    device: torch.device
    title: str  # the progress bar's label
    resume_hint: str  # what the user runs to continue after an interrupt

    @abstractmethod
    def step(self, step: int, lr_scale: float) -> dict[str, torch.Tensor]:
        """One optimisation step at ``lr_scale`` times the peak rates; its logged values."""

    @abstractmethod
    def check_finite(self, bad: torch.Tensor | None, step: int) -> None:
        """Raise TrainingError if ``bad`` (a non-finite loss since the start) is set anywhere;
        a collective under torchrun."""

    @abstractmethod
    def write_logs(self, record: dict, sums: dict[str, torch.Tensor], count: int) -> str:
        """Append one metrics line per run (``record`` plus the means ``sums / count``); return
        a short status for the progress bar."""

    @abstractmethod
    def save_checkpoint(self, step: int) -> None: ...

    @abstractmethod
    def save_final(self, step: int) -> None:
        """The final weights, once the last step is done."""


def run_steps(
    steps: Steps, start: int, end: int, *, progress: bool = True, console: Console | None = None
) -> None:
    """Steps ``start`` .. ``end - 1`` of ``steps.cfg``: logged every ``log_every`` steps and at
    ``end``, checkpointed every ``checkpoint_every`` and at ``end`` (or at the first Ctrl-C,
    which then stops the run); the final weights are saved once ``end`` is the last step."""
    cfg = steps.cfg
    console = console or Console(stderr=True)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    bad: torch.Tensor | None = None
    last_log_time, last_log_step = time.perf_counter(), start
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not (progress and dist.is_main()),
        transient=False,
    )
    task = bar.add_task(steps.title, total=cfg.steps, completed=start, status="")
    with bar, _stop_on_interrupt() as interrupt, _flush_denormals(steps.device):
        for step in range(start, end):
            lr, scale = learning_rate_and_scale(cfg, step)
            logs = steps.step(step, scale)
            finite = torch.isfinite(logs["loss"].detach())
            bad = ~finite if bad is None else bad | ~finite
            for k, v in logs.items():
                v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                sums[k] = sums[k] + v if k in sums else v
            count += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == end:
                steps.check_finite(bad, done)
                now = time.perf_counter()
                rate = (done - last_log_step) * cfg.batch_size / max(now - last_log_time, 1e-9)
                record = {"step": done, "lr": lr, "samples_per_s": rate}
                status = steps.write_logs(record, sums, count)
                bar.update(task, completed=done, status=status)
                sums, count = {}, 0
                last_log_time, last_log_step = now, done
            if done % cfg.checkpoint_every == 0 or done == end or interrupt["stop"]:
                steps.check_finite(bad, done)
                steps.save_checkpoint(done)
            if interrupt["stop"]:
                console.print(f"interrupted: checkpoint at step {done}; {steps.resume_hint}")
                raise KeyboardInterrupt
    if end == cfg.steps:
        steps.check_finite(bad, end)  # a collective: every process takes part
        steps.save_final(end)


def non_finite_error(step: int, who: str = "", last_good: Path | None = None) -> TrainingError:
    where = f"; the last good checkpoint is {last_good}" if last_good is not None else ""
    return TrainingError(
        f"loss became non-finite (NaN or inf){who} at or before step {step}; training "
        f"stopped{where}. Try a lower train.lr or train.grad_clip=1"
    )


# ----------------------------------------------------------------------------------------------
# One run


class SingleRun(Steps):
    """One model in one run directory; under torchrun, this process's slice of each batch."""

    def __init__(
        self, cfg: RunConfig, data: Dataset, out: Path, device: torch.device, resume: bool
    ):
        self.run_cfg, self.cfg, self.out, self.device = cfg, cfg.train, out, device
        self.main = dist.is_main()
        self.title = f"{cfg.method} on {cfg.data}"
        self.resume_hint = "continue with --resume"
        self.data = data.split("train")
        self.layout = memory_format_for(self.cfg, device)
        self.model = seeded_model(cfg, self.data.info, device).to(memory_format=self.layout)
        # A method with its own update rule (word2vec's per-pair SGD) has no optimiser and is
        # called without autograd.
        self.self_updating = isinstance(self.model, SelfUpdating) and self.model.updates_itself()
        if self.self_updating and dist.world_size() > 1:
            raise ConfigError(
                f"{cfg.method} trains by its own update rule with these settings, which runs in "
                "one process only, not under torchrun"
            )
        groups = {} if self.self_updating else self.model.param_groups()
        self.optimisers = Optimisers(groups, self.cfg, self.model.group_train_overrides)
        # TensorBoard or W&B beside metrics.jsonl (refused here, before anything is written,
        # when the library is missing), with figures drawn from the first training images
        self.sink = open_sink(out, cfg) if self.main else None
        # kNN accuracy, std and rank of the codes every train.monitor_every steps (main only)
        watch = self.main and self.cfg.monitor_every > 0 and isinstance(self.model, Encoder)
        self.monitors = Monitors(data, self.cfg.seed) if watch else None
        self.last_monitored = 0
        first = np.arange(min(8, len(self.data)))
        self.figure_inputs = self.data.get_batch(first)["x"] if self.sink is not None else None
        if self.main:
            out.mkdir(parents=True, exist_ok=True)
            if not resume:
                write_run_files(out, cfg, data)
        dist.barrier()  # the others read the run directory only once rank 0 has checked it

        self.start = 0
        self.metrics_path = out / "metrics.jsonl"
        self.checkpoint_root = out / "checkpoint"
        if resume:
            self._resume()
        if dist.world_size() > 1:  # each process draws its own noise after the shared init
            torch.manual_seed(self.cfg.seed + 1_000_003 * dist.rank() + self.start)

        # One optimiser: PyTorch DDP (gradients reduced during backward). Several: their
        # gradients come from separate backward passes, so they are averaged explicitly.
        self.forward = self.model
        if dist.world_size() > 1 and len(groups) == 1:
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.model.idle_parameters,
            )
        if not self.self_updating:  # an own update rule has no forward pass to compile
            self.forward = compiled(self.forward, self.cfg, device)
        self.autocast = autocast_for(self.cfg, device)
        self.sampler = BatchIndices(
            len(self.data), self.cfg.batch_size, self.cfg.seed, self.cfg.order == "shuffled"
        )
        self.per_rank = self.cfg.batch_size // dist.world_size()
        self.lo = dist.rank() * self.per_rank
        self.model.train()

    def _resume(self) -> None:
        ckpts = checkpoint_dirs(self.checkpoint_root)
        if not ckpts:
            raise TrainingError(f"cannot resume: {self.out} has no complete checkpoint")
        ck = read_checkpoint(ckpts[-1], self.device)
        self.model.load_state_dict(ck["model"])
        for name, opt in self.optimisers.optimizers.items():
            opt.load_state_dict(ck["optimizers"][name])
        torch.set_rng_state(ck["rng"]["torch_cpu"])
        if self.device.type == "cuda" and "torch_cuda_0" in ck["rng"]:
            torch.cuda.set_rng_state(ck["rng"]["torch_cuda_0"], self.device)
        self.start = ck["step"]
        if self.main:
            _trim_metrics(self.metrics_path, self.start)

    def step(self, step, lr_scale):
        idx = self.sampler(step)[self.lo : self.lo + self.per_rank]
        batch = batch_to(
            make_batch(self.data, idx, self.cfg, self.device), self.device, self.layout
        )
        if self.self_updating:
            with torch.no_grad():
                return self.model.update(batch, step, lr_scale)
        self.optimisers.set_scale(lr_scale)
        begin_step(self.cfg, self.device)
        with self.autocast:
            logs = self.forward(batch, step)
        optimise(logs, self.optimisers)
        return logs

    def check_finite(self, bad, step):
        flag = torch.zeros((), device=self.device) if bad is None else bad.clone().float()
        if bool(dist.all_reduce_max(flag).item()):
            good = checkpoint_dirs(self.checkpoint_root)
            raise non_finite_error(step, last_good=good[-1] if good else None)

    def write_logs(self, record, sums, count):
        record.update({k: v.item() / count for k, v in sums.items()})
        every = self.cfg.monitor_every
        if self.monitors is not None and record["step"] // every > self.last_monitored // every:
            start = time.perf_counter()
            record.update(self.monitors(self.model))
            record["monitor_seconds"] = time.perf_counter() - start
            self.last_monitored = record["step"]
        if self.main:
            append_jsonl(self.metrics_path, record)
            if self.sink is not None:
                self.sink.scalars(record["step"], record)
        return f"loss {record['loss']:.4g}  {record['samples_per_s']:,.0f} samples/s"

    def save_checkpoint(self, step):
        if self.sink is not None:
            x = self.figure_inputs.to(self.device)
            for name, images in decoder_figures(self.model, x).items():
                self.sink.images(step, name, images)
        if self.main:
            write_checkpoint(
                self.checkpoint_root,
                step,
                self.model,
                self.optimisers.optimizers,
                {"method": self.run_cfg.method},
                keep=self.cfg.keep_checkpoints,
            )
        dist.barrier()

    def save_final(self, step):
        if self.main:
            save_tensors(
                self.out / "model.safetensors",
                model_state(self.model),
                metadata={"method": self.run_cfg.method, "steps": step},
            )


def train(
    cfg: RunConfig,
    data: Dataset,
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> Run:
    """Train ``cfg`` on ``data`` (the whole data set; training takes its train split) into the
    run directory ``out``; returns the Run (model in eval mode).

    ``stop_after`` ends this session after that many total steps with a checkpoint, as a
    pre-empted job would; ``resume=True`` continues from the latest checkpoint.
    """
    tcfg = cfg.train
    out = Path(out)
    check_run_data(cfg, data)
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
    if dist.is_main():
        prepare_run_dir(out, resume)
    run = SingleRun(cfg, data, out, device, resume)
    if resume and dist.is_main():
        (console or Console(stderr=True)).print(f"resuming {out} from step {run.start}")
    end = tcfg.steps if stop_after is None else min(tcfg.steps, stop_after)
    try:
        run_steps(run, run.start, end, progress=progress, console=console)
    finally:
        if run.sink is not None:
            run.sink.close()
    dist.barrier()
    run.model.eval()
    return Run(out, cfg, run.model)


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


@contextmanager
def _flush_denormals(device: torch.device):
    """Treat subnormal floats (below 1.2e-38) as zero while training on a CPU.

    Adam's running mean of squared gradients turns subnormal once a loss gets small (VQ-VAE's
    pixel MSE after a few hundred steps on sprites), and x86 CPUs compute on subnormals many times
    slower. Values that small are far below Adam's epsilon, so results do not change. The
    default (off) is restored after.
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
