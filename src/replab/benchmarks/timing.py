"""What the throughput benchmarks share: a short run whose rate is read over its warm half."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np


def timed_overrides(steps: int, batch_size: int | None = None, **more) -> dict:
    """Settings for a timed run: two log lines (the second covers the warm half of the steps)
    and no checkpoint until the end."""
    overrides = {
        "train.steps": steps,
        "train.log_every": max(1, steps // 2),
        "train.checkpoint_every": 10 * steps,
        **more,
    }
    if batch_size is not None:
        overrides["train.batch_size"] = batch_size
    return overrides


def warm_rate(run_dir: Path) -> float:
    """Samples/s of a run's last logged window: the second half of a ``timed_overrides`` run."""
    last = (Path(run_dir) / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return json.loads(last)["samples_per_s"]


def per_step_overrides(warmup: int, steps: int, batch_size: int, **more) -> dict:
    """Settings for a run logged at every step: ``warmup`` steps, then ``steps`` timed ones."""
    return {
        "train.steps": warmup + steps,
        "train.batch_size": batch_size,
        "train.log_every": 1,
        "train.checkpoint_every": 10 * (warmup + steps),
        **more,
    }


def median_rate(run_dir: Path, skip: int) -> float:
    """The median samples/s of a run's per-step log lines after the first ``skip``."""
    records = (Path(run_dir) / "metrics.jsonl").read_text().strip().splitlines()
    return float(statistics.median(json.loads(r)["samples_per_s"] for r in records[skip:]))


def images_per_second(dataset, batch: int, seconds: float, seed: int = 0) -> tuple[float, float]:
    """(median, best) images/s of ``dataset.get_batch`` on random batches of ``batch`` indices."""
    rng = np.random.default_rng(seed)
    dataset.get_batch(rng.integers(0, len(dataset), batch))  # warm-up (builds any tables)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        indices = rng.integers(0, len(dataset), batch)
        t0 = time.perf_counter()
        dataset.get_batch(indices)
        times.append(time.perf_counter() - t0)
    return batch / float(np.median(times)), batch / min(times)
