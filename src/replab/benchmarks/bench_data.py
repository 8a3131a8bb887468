"""How fast the procedural data sets render: images per second of ``get_batch``.

    python -m replab.benchmarks.bench_data [--seconds 1.0] [--threads N] [--datasets sprites ...]

For each data set and batch sizes 64 and 1024, calls ``get_batch`` on fresh random indices for
about ``--seconds`` (at least 5 calls, after one warm-up call) and prints the median and the best
images per second. The machine's load average is printed too: on a shared machine the median
moves with it, the best less so.
"""

from __future__ import annotations

import argparse
import os

import torch

from replab.benchmarks.timing import images_per_second
from replab.data import make_dataset

DATASETS = ("sprites", "color_sprites", "noisy_sprites")
BATCH_SIZES = (64, 1024)


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    return [
        (f"data: {name}, batch {batch}", f"{v['median']:,.0f} images/s (best {v['best']:,.0f})", "")
        for name, by_batch in r["rates"].items()
        for batch, v in by_batch.items()
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print(f"{'data set':<15} {'batch':>6} {'median img/s':>14} {'best img/s':>12}")
    result = {"benchmark": "data", "threads": torch.get_num_threads(), "rates": {}}
    for name in args.datasets:
        dataset = make_dataset(name)
        for batch in BATCH_SIZES:
            median, best = images_per_second(dataset, batch, args.seconds)
            print(f"{name:<15} {batch:>6} {median:>14,.0f} {best:>12,.0f}", flush=True)
            result["rates"].setdefault(name, {})[str(batch)] = {"median": median, "best": best}
    return result


if __name__ == "__main__":
    main()
