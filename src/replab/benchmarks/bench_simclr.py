"""SimCLR training throughput at the ResNet-18 CIFAR setting: batch 512 of 3x32x32 images.

Measures, on the current device:

- ``replab_images_per_s``: replab's whole training step through ``train()`` (batch assembly,
  both views drawn by ``nn.views`` on the device, ResNet-18 + projector forward and backward on
  the 1,024 views, NT-Xent, Adam, logging), in *source* images per second (each image counted
  once, not once per view), read from the loop's own ``samples_per_s`` after the warm-up steps;
- ``plain_images_per_s``: a plain PyTorch step of the same model on pre-made views (no
  augmentation, no loop), in the loop's precision (bf16 autocast on CUDA, fp32 on the CPU);
- ``views_ms`` and ``augmentation_share``: the time of drawing both views of a batch, alone,
  and its share of replab's step.

The data are random 3x32x32 uint8 images (throughput does not depend on content), written to a
temporary ``.npz`` and read by the ``npz:`` loader. On a 2-core CPU one step of 1,024 ResNet-18
views takes minutes, so there the default is no warm-up and 1 timed step (the first step's one-off
costs are small beside it); on a GPU 10 warm-up and 40 timed steps. ``--compare-kornia`` also times
kornia's equivalent augmentation pipeline against ``nn.views`` where kornia is installed (it is
not a dependency); ``--compare-lightly`` puts lightly's ``NTXentLoss`` in place of replab's where
lightly and the torchvision it imports are installed (torchvision brings a CUDA build of torch, so
neither is a dependency, not even of the ``bench`` extra). Run:
``python -m replab.benchmarks.bench_simclr [--steps N] [--compare-kornia] [--compare-lightly]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from replab.benchmarks.timing import median_rate, per_step_overrides
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.simclr import SimCLR, SimCLRConfig
from replab.nn.views import Views, step_generator
from replab.run import pick_device
from replab.training.loop import train


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, reps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def replab_rate(batch: int, size: int, warmup: int, steps: int, more: dict | None = None) -> float:
    """Source images/s of ``train()``: the median of the loop's per-step log records after
    the warm-up; ``more`` overrides the run's settings (``train.compile``, say)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="replab-bench-simclr-") as tmp:
        path = Path(tmp) / "random.npz"
        # two batches' worth of images: the loop draws by index, content does not matter
        np.savez(path, x=rng.integers(0, 256, size=(2 * batch, size, size, 3), dtype=np.uint8))
        cfg = configure(
            "simclr",
            f"npz:{path}",
            overrides=per_step_overrides(warmup, steps, batch, **(more or {})),
        )
        train(cfg, make_dataset(cfg.data), Path(tmp) / "run", progress=False)
        return median_rate(Path(tmp) / "run", warmup)


def plain_rate(batch: int, size: int, warmup: int, steps: int, device) -> float:
    """Source images/s of a bare step of the same model on fixed, pre-made views."""
    torch.manual_seed(0)
    model = SimCLR(SimCLRConfig(), DataInfo(shape=(3, size, size))).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    views = torch.rand(2 * batch, 3, size, size, device=device)
    bf16 = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z1, z2 = model.projector(model.backbone(views)).chunk(2)
            loss = model.criterion(z1, z2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = _timed(step, device, steps, warmup)
    return batch / statistics.median(times)


def views_seconds(batch: int, size: int, device, reps: int = 5) -> float:
    """Median time of drawing both views of a batch with the SimCLR recipe."""
    views = SimCLR(SimCLRConfig(), DataInfo(shape=(3, size, size))).views
    x = torch.rand(batch, 3, size, size, device=device)
    times = _timed(lambda: views.pair(x, step_generator(0, 1)), device, reps, warmup=2)
    return statistics.median(times)


def kornia_comparison(batch: int, size: int, device, rounds: int = 5) -> dict:
    """kornia's AugmentationSequential vs ``nn.views`` on one view of a batch, the same recipe
    (crop 0.08-1, flip, jitter 0.4/0.4/0.4/0.1 at p 0.8, grayscale 0.2), with and without a 3x3
    Gaussian blur at p 0.5; alternated, median per-call time of each over the rounds."""
    import kornia
    import kornia.augmentation as K

    x = torch.rand(batch, 3, size, size, device=device)
    out = {"kornia_version": kornia.__version__}
    for blur in (False, True):
        ops = [
            K.RandomResizedCrop((size, size), scale=(0.08, 1.0)),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
        ]
        if blur:
            ops.append(K.RandomGaussianBlur((3, 3), (0.1, 2.0), p=0.5))
        pipe = K.AugmentationSequential(*ops).to(device)
        ours = Views.simclr(strength=0.5, blur_p=0.5 if blur else 0.0)
        k_times, v_times = [], []
        with torch.no_grad():
            for r in range(rounds):  # alternate, so load drifts hit both alike
                k_times += _timed(lambda pipe=pipe: pipe(x), device, 1, warmup=1 if r == 0 else 0)
                v_times += _timed(
                    lambda ours=ours: ours(x, step_generator(0, 1)),
                    device,
                    1,
                    warmup=1 if r == 0 else 0,
                )
        key = "blur" if blur else "no_blur"
        out[f"kornia_ms_{key}"] = 1000 * statistics.median(k_times)
        out[f"views_ms_{key}"] = 1000 * statistics.median(v_times)
        out[f"speedup_{key}"] = out[f"kornia_ms_{key}"] / out[f"views_ms_{key}"]
    return out


def lightly_comparison(
    batch: int, size: int, device, rounds: int = 5, with_step: bool = True
) -> dict:
    """lightly's ``NTXentLoss`` (memory bank off, no gathering) in place of replab's: both
    losses on the same embeddings, then the loss alone (forward and backward on [2B, 128]
    embeddings) and, with ``with_step``, a whole step (the same ResNet-18 and projector on the
    same pre-made views, Adam) with each, alternated, median time of each."""
    import lightly
    from lightly.loss import NTXentLoss as LightlyNTXentLoss

    torch.manual_seed(0)
    model = SimCLR(SimCLRConfig(), DataInfo(shape=(3, size, size))).to(device).train()
    ours = model.criterion
    theirs = LightlyNTXentLoss(temperature=ours.temperature, gather_distributed=False)
    z = torch.randn(2 * batch, 128, device=device, requires_grad=True)
    out = {
        "lightly_version": lightly.__version__,
        "loss_replab": float(ours(*z.chunk(2))),
        "loss_lightly": float(theirs(*z.chunk(2))),
    }
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    views = torch.rand(2 * batch, 3, size, size, device=device)
    bf16 = device.type == "cuda"

    def loss_only(criterion):
        criterion(*z.chunk(2)).backward()

    def step(criterion):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z1, z2 = model.projector(model.backbone(views)).chunk(2)
            loss = criterion(z1.float(), z2.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    timings = [("loss", loss_only, 10)] + ([("step", step, 1)] if with_step else [])
    for name, fn, reps in timings:
        times = {"replab": [], "lightly": []}
        for r in range(rounds):  # alternate, so load drifts hit both alike
            for who, criterion in (("replab", ours), ("lightly", theirs)):
                times[who] += _timed(
                    lambda c=criterion, fn=fn: fn(c), device, reps, warmup=1 if r == 0 else 0
                )
        for who in times:
            out[f"{who}_{name}_ms"] = 1000 * statistics.median(times[who])
        out[f"{name}_speed_ratio"] = out[f"lightly_{name}_ms"] / out[f"replab_{name}_ms"]
    return out


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    setting = f"simclr: {r['setting']}, {r['device']}"
    ours, beside = f"views {r['views_ms']:.0f} ms per batch", ""
    if "replab_images_per_s" in r:
        ours = f"{r['replab_images_per_s']:,.1f} images/s; {ours}"
    if "plain_images_per_s" in r:
        beside = f"plain step {r['plain_images_per_s']:,.1f} images/s"
        if "replab_vs_plain" in r:
            beside += f" (replab {r['replab_vs_plain']:.2f}x)"
    rows = [(setting, ours, beside)]
    for peer in ("kornia", "lightly"):
        if isinstance(r.get(peer), dict):
            figures = ", ".join(
                f"{k} {v:.3g}" for k, v in r[peer].items() if isinstance(v, int | float)
            )
            rows.append((f"simclr: against {peer}", "", figures))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=None, help="timed steps (CPU 1, GPU 40)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (CPU 0, GPU 10)")
    p.add_argument("--compare-kornia", action="store_true")
    p.add_argument("--compare-lightly", action="store_true")
    p.add_argument("--lightly-loss-only", action="store_true", help="no whole-step comparison")
    p.add_argument("--skip-loop", action="store_true", help="leave out replab's loop")
    p.add_argument("--skip-plain", action="store_true", help="leave out the plain step")
    args = p.parse_args(argv)
    device = pick_device("auto")
    gpu = device.type == "cuda"
    steps = args.steps or (40 if gpu else 1)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 0)
    result = {
        "benchmark": "simclr",
        "setting": f"resnet18 (CIFAR stem), batch {args.batch_size}, 3x{args.size}x{args.size}",
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "threads": torch.get_num_threads(),
        "timed_steps": steps,
        "warmup_steps": warmup,
    }
    t = views_seconds(args.batch_size, args.size, device)
    result["views_ms"] = 1000 * t
    if not args.skip_plain:
        result["plain_images_per_s"] = plain_rate(args.batch_size, args.size, warmup, steps, device)
    if not args.skip_loop:
        rate = replab_rate(args.batch_size, args.size, warmup, steps)
        result["replab_images_per_s"] = rate
        result["replab_step_s"] = args.batch_size / rate
        result["augmentation_share"] = t / result["replab_step_s"]
        if not args.skip_plain:
            result["replab_vs_plain"] = rate / result["plain_images_per_s"]
    if args.compare_kornia:
        try:
            result["kornia"] = kornia_comparison(args.batch_size, args.size, device)
        except ImportError:
            result["kornia"] = "not installed"
    if args.compare_lightly:
        try:
            result["lightly"] = lightly_comparison(
                args.batch_size, args.size, device, with_step=not args.lightly_loss_only
            )
        except ImportError as e:  # lightly, or the torchvision it imports, is missing
            result["lightly"] = f"not installed ({e})"
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
