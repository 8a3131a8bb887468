"""Many seeds in one batched process (``replab train --seeds``) against one seed.

Trains beta_vae on sprites at batch 64 with ``train_seeds`` for 1 seed and for N seeds (default
4 on a CPU, 16 on a GPU), alternating, and prints images/s summed over the seeds and the
speed-up of N seeds over one. Run: ``python -m replab.benchmarks.bench_seeds [--seeds N]
[--steps S]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from replab.benchmarks.timing import timed_overrides, warm_rate
from replab.data import make_dataset
from replab.methods import configure
from replab.run import pick_device
from replab.training.seeds import train_seeds


def seeds_rate(n: int, method: str, data: str, steps: int, batch: int) -> float:
    """Images/s summed over ``n`` seeds, measured on the second half of the steps."""
    cfg = configure(method, data, overrides=timed_overrides(steps, batch))
    with tempfile.TemporaryDirectory() as tmp:
        dirs = train_seeds(
            cfg, make_dataset(data), list(range(n)), Path(tmp) / "runs", progress=False
        )
        return n * warm_rate(dirs[0])


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    setting = f"seeds: {r['seeds']} {r['method']} seeds at once on {r['data']}, {r['device']}"
    ours = f"{r['all_seeds_samples_per_s']:,.0f} samples/s in all"
    beside = f"one seed {r['one_seed_samples_per_s']:,.0f} ({r['speedup']:.2f}x)"
    return [(setting, ours, beside)]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="beta_vae")
    p.add_argument("--data", default="sprites")
    p.add_argument("--seeds", type=int, default=0, help="0: 16 on a GPU, 4 on a CPU")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    device = pick_device("auto")
    n = args.seeds or (16 if device.type == "cuda" else 4)
    one, many = [], []
    for _ in range(args.rounds):
        one.append(seeds_rate(1, args.method, args.data, args.steps, args.batch_size))
        many.append(seeds_rate(n, args.method, args.data, args.steps, args.batch_size))
    result = {
        "benchmark": "seeds",
        "method": args.method,
        "data": args.data,
        "batch_size": args.batch_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "seeds": n,
        "one_seed_samples_per_s": float(np.median(one)),
        "all_seeds_samples_per_s": float(np.median(many)),
    }
    result["speedup"] = result["all_seeds_samples_per_s"] / result["one_seed_samples_per_s"]
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
