"""Training throughput of every registered method, and the quick evaluation suite's time.

Each method trains on the first procedural data set it accepts (images: sprites, then the colour
sprites, video clips, audio tones, a synthetic language), at its published batch size, for
``--steps`` steps; the rate is taken over the second half (warm). A "sample" is one element of
the method's batch: an image, a clip, an audio window or a chunk of tokens (bench_word2vec and
bench_cpc convert to words/s and seconds of audio/s). Then the quick suite evaluates the
beta_vae run, without the baseline cache.
Run: ``python benchmarks/bench_methods.py [--steps N] [--only M,M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from _timed import timed_overrides, warm_rate

from replab.config import ConfigError, resolve
from replab.data.base import DataError
from replab.registry import method_names
from replab.train.loop import train
from replab.train.run import pick_device

CANDIDATE_DATA = ("sprites", "color_sprites", "moving_sprites", "tones", "bilingual_a")


def train_rate(method: str, steps: int, root: Path) -> dict | None:
    """Train ``method`` on the first candidate data set it accepts; None if it takes none."""
    for data in CANDIDATE_DATA:
        try:
            cfg = resolve(method, data, overrides=timed_overrides(steps))
            out = root / f"{method}-{data}"
            t = time.perf_counter()
            train(cfg, out, progress=False)
        except (ConfigError, DataError, ValueError):
            continue
        seconds = time.perf_counter() - t
        return {
            "data": data,
            "batch_size": cfg.train.batch_size,
            "samples_per_s": warm_rate(out),
            "seconds": seconds,
            "run": out,
        }
    return None


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
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = train_rate(name, args.steps, Path(tmp))
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
            from replab.train.run import load

            # the uncached figure: the raw-pixel baseline is computed, not read back
            cache, os.environ["REPLAB_CACHE"] = os.environ.get("REPLAB_CACHE"), "off"
            t = time.perf_counter()
            try:
                evaluate(load(vae["run"]), suite="quick", log=lambda *a, **k: None)
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
