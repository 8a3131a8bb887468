"""Training throughput of every registered method, and the quick evaluation suite's time.

Each method trains on the first procedural data set it accepts (images: sprites, then the colour
sprites, video clips, audio tones, a synthetic language), at its published batch size, for
``--steps`` steps; the rate is taken over the second half (warm). A "sample" is one element of
the method's batch: an image, a clip, an audio window or a chunk of tokens (bench_word2vec and
bench_cpc convert to words/s and seconds of audio/s). Then the quick suite evaluates the
beta_vae run, without the baseline cache.
Run: ``python -m replab.benchmarks.bench_methods [--steps N] [--only M,M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from replab.benchmarks.timing import timed_overrides, warm_rate
from replab.data import make_dataset
from replab.methods import configure, method_class, method_names
from replab.run import load, pick_device
from replab.training.loop import train

CANDIDATE_DATA = ("sprites", "color_sprites", "moving_sprites", "tones", "bilingual_a", "rooms")


def first_accepted(method: str, datasets: dict) -> str | None:
    """The first candidate data set ``method`` takes with its default settings (its declared
    ``accepts``), building each candidate once; None if it takes none."""
    cls = method_class(method)
    for spec in CANDIDATE_DATA:
        if spec not in datasets:
            datasets[spec] = make_dataset(spec)
        if cls.data_problem(datasets[spec].info, cls.Config()) is None:
            return spec
    return None


def train_rate(method: str, steps: int, root: Path, datasets: dict) -> dict | None:
    """Train ``method`` on the first candidate data set it accepts; None if it takes none."""
    data = first_accepted(method, datasets)
    if data is None:
        return None
    cfg = configure(method, data, overrides=timed_overrides(steps))
    out = root / f"{method}-{data}"
    t = time.perf_counter()
    train(cfg, datasets[data], out, progress=False)
    return {
        "data": data,
        "batch_size": cfg.train.batch_size,
        "samples_per_s": warm_rate(out),
        "seconds": time.perf_counter() - t,
        "run": out,
    }


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name, m in r["methods"].items():
        if m is None:
            continue
        setting = f"methods: {name} on {m['data']}, batch {m['batch_size']}, {r['steps']} steps"
        rows.append((setting, f"{m['samples_per_s']:,.1f} samples/s", ""))
    if "quick_suite_seconds_beta_vae_sprites" in r:
        seconds = r["quick_suite_seconds_beta_vae_sprites"]
        rows.append(
            ("quick evaluation suite, beta_vae on sprites, uncached", f"{seconds:.0f} s", "")
        )
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--only", default="", help="comma-separated methods (default: all)")
    args = p.parse_args(argv)
    names = [m for m in method_names() if not args.only or m in args.only.split(",")]
    result = {
        "benchmark": "methods",
        "device": str(pick_device("auto")),
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "methods": {},
    }
    datasets: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = train_rate(name, args.steps, Path(tmp), datasets)
            result["methods"][name] = r
            if r is None:
                print(f"{name:14s} takes none of {', '.join(CANDIDATE_DATA)}", flush=True)
                continue
            print(
                f"{name:14s} {r['data']:15s} batch {r['batch_size']:4d}  "
                f"{r['samples_per_s']:10,.1f} samples/s  ({r['seconds']:.1f} s)",
                flush=True,
            )
        vae = result["methods"].get("beta_vae")
        if vae is not None:
            from replab.eval.protocol import evaluate

            # the uncached figure: the raw-pixel baseline is computed, not read back
            cache, os.environ["REPLAB_CACHE"] = os.environ.get("REPLAB_CACHE"), "off"
            t = time.perf_counter()
            try:
                run = load(vae["run"])
                evaluate(run, datasets[vae["data"]], "quick", log=lambda *a, **k: None)
            finally:
                if cache is None:
                    del os.environ["REPLAB_CACHE"]
                else:
                    os.environ["REPLAB_CACHE"] = cache
            result["quick_suite_seconds_beta_vae_sprites"] = time.perf_counter() - t
            print(f"quick suite on the beta_vae run: {time.perf_counter() - t:.1f} s")
        for r in result["methods"].values():
            if r is not None:
                r["run"] = str(r["run"])
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
