"""CPC training throughput on raw audio, in seconds of audio per second of training.

Measures, on the current device, at the paper's window (20,480 samples at 16 kHz, 1.28 s):

- ``replab_audio_s_per_s``: replab's whole training step through ``train()`` (batches read from
  a ``wav:`` folder, the strided conv encoder, the GRU, 12 predictors, InfoNCE with 128 drawn
  negatives, Adam, logging): the loop's own ``samples_per_s`` after the warm-up steps (median),
  times the window's duration;
- ``plain_audio_s_per_s``: a bare step of the same model (forward, backward, Adam) on a fixed
  batch, in the loop's precision (bf16 autocast on CUDA, fp32 on the CPU); and
  ``plain_audio_s_per_cpu_s``, the same per second of the process's CPU time, which other
  processes on a shared CPU disturb less than the wall clock.

The audio is random noise written to temporary 16-bit WAV files (throughput does not depend on
content). Defaults: on a CPU 256 channels, batch 8, 1 warm-up and 2 timed steps; on a GPU the
paper's 512 channels, batch 64, 5 and 20. Run: ``python -m replab.benchmarks.bench_cpc
[--channels N] [--batch-size N] [--steps N]`` or ``replab bench --suite cpc``.
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
from scipy.io import wavfile

from replab.benchmarks.timing import median_rate, per_step_overrides
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.cpc import CPC, CPCConfig
from replab.run import pick_device
from replab.training.loop import train

RATE = 16000
WINDOW = 20480  # the paper's training windows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def replab_rate(channels: int, batch: int, warmup: int, steps: int) -> float:
    """Windows per second of ``train()``: median of the per-step log records after warm-up."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="replab-bench-cpc-") as tmp:
        folder = Path(tmp) / "wavs"
        folder.mkdir()
        for i in range(2 * batch):
            noise = rng.integers(-8000, 8000, size=WINDOW, dtype=np.int16)
            wavfile.write(folder / f"noise_{i}.wav", RATE, noise)
        cfg = configure(
            "cpc",
            f"wav:{folder},seconds={WINDOW / RATE}",
            overrides=per_step_overrides(warmup, steps, batch, **{"model.channels": channels}),
        )
        train(cfg, make_dataset(cfg.data), Path(tmp) / "run", progress=False)
        return median_rate(Path(tmp) / "run", warmup)


def plain_rate(channels: int, batch: int, warmup: int, steps: int, device) -> tuple[float, float]:
    """Windows per second of a bare step of the same model on a fixed batch: per second of
    wall-clock time, and per second of this process's CPU time (steadier on a shared CPU)."""
    torch.manual_seed(0)
    model = CPC(CPCConfig(channels=channels), DataInfo(shape=(1, WINDOW), kind="audio"))
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x = 0.1 * torch.randn(batch, 1, WINDOW, device=device)
    bf16 = device.type == "cuda"

    def step(i):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss({"x": x}, i)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    _sync(device)
    times, cpu = [], []
    for i in range(steps):
        t, c = time.perf_counter(), time.process_time()
        step(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return batch / statistics.median(times), batch / statistics.median(cpu)


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    setting = f"cpc: {r['setting']}, {r['device']}"
    plain = f"plain step of the same model {r['plain_audio_s_per_s']:.1f} s of audio/s"
    if "replab_audio_s_per_s" not in r:
        return [(setting, "", plain)]
    ours = f"{r['replab_audio_s_per_s']:.1f} s of audio/s"
    return [(setting, ours, f"{plain} (replab {r['replab_vs_plain']:.2f}x)")]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=None, help="encoder channels (CPU 256, GPU 512)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per step (CPU 8, GPU 64)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (CPU 2, GPU 20)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (CPU 1, GPU 5)")
    p.add_argument("--skip-loop", action="store_true", help="only the plain step")
    args = p.parse_args(argv)
    device = pick_device("auto")
    gpu = device.type == "cuda"
    channels = args.channels or (512 if gpu else 256)
    batch = args.batch_size or (64 if gpu else 8)
    steps = args.steps or (20 if gpu else 2)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    seconds = WINDOW / RATE
    result = {
        "benchmark": "cpc",
        "setting": f"{channels} channels, batch {batch} windows of {WINDOW} samples at {RATE} Hz",
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "threads": torch.get_num_threads(),
        "timed_steps": steps,
        "warmup_steps": warmup,
    }
    plain, plain_cpu = plain_rate(channels, batch, warmup, steps, device)
    result["plain_audio_s_per_s"] = plain * seconds
    result["plain_audio_s_per_cpu_s"] = plain_cpu * seconds
    if not args.skip_loop:
        rate = replab_rate(channels, batch, warmup, steps)
        result["replab_audio_s_per_s"] = rate * seconds
        result["replab_step_s"] = batch / rate
        result["replab_vs_plain"] = rate / plain
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
