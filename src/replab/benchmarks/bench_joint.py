"""The contrastive and joint-embedding methods at one budget: probes with few labels.

Every method (SimCLR, BYOL, MoCo v3, Barlow Twins, VICReg, DINO) trains on each data set at the same
steps and batch for several seeds, then the evaluation protocol (``--suite``, standard by
default) probes its codes; the table gives the linear probe's accuracy at 1% and 10% of the
labels (mean and spread over seeds) beside the raw-pixel and random-encoder baselines, and the
training time. ``--optimizer published`` trains each method with its own published settings
(LARS for the five new ones, Adam for SimCLR); ``adam`` trains all with SimCLR's CPU setting
(Adam, lr 1e-3, weight decay 1e-6). ``replab bench --suite joint`` runs the defaults:
``python -m replab.benchmarks.bench_joint --data digits --seeds 3``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from replab.eval.results import spread

METHODS = ("simclr", "byol", "moco_v3", "barlow_twins", "vicreg", "dino")
PARTS = ("linear_probe", "baselines")  # all the table reads: the other parts cost time only
ADAM = {"train.optimizer": "adam", "train.lr": 1e-3, "train.weight_decay": 1e-6,
        "train.warmup_steps": 0}  # fmt: skip


def one_run(method, spec, data, seed, args, root: Path) -> dict:
    from replab.eval.protocol import evaluate, suite_named
    from replab.methods import configure
    from replab.training.loop import train

    overrides = {"train.steps": args.steps, "train.batch_size": args.batch_size,
                 "train.seed": seed, "train.log_every": max(1, args.steps // 10)}  # fmt: skip
    if args.optimizer == "adam":
        overrides |= ADAM
    if args.crop_min is not None:
        overrides["crop_min"] = args.crop_min
    out = root / f"{spec.replace(':', '_')}-{method}-{seed}"
    start = time.perf_counter()
    run = train(configure(method, spec, overrides=overrides), data, out, progress=False)
    seconds = time.perf_counter() - start
    suite = suite_named(args.suite).only(PARTS)
    result = evaluate(run, data, suite, seed=seed, log=lambda *a, **k: None).to_json()
    probe = result["linear_probe"]
    base = result["baselines"]
    return {
        "train_seconds": seconds,
        "probe": {f: probe[f]["mean"] for f in ("0.01", "0.1")},
        "baselines": {name: {f: c[f]["mean"] for f in ("0.01", "0.1")} for name, c in base.items()},
    }


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    for spec, methods in r["results"].items():
        for method, m in methods.items():
            seeds = len(m["train_seconds"]["runs"])
            setting = (f"joint: {method} on {spec}, {r['steps']} steps, batch {r['batch_size']}, "
                       f"{r['optimizer']} settings, {seeds} seeds")  # fmt: skip
            ours = (f"probe 1% {m['probe_0.01']['mean']:.3f} +- {m['probe_0.01']['sd']:.3f}, "
                    f"10% {m['probe_0.1']['mean']:.3f} +- {m['probe_0.1']['sd']:.3f}; "
                    f"{m['train_seconds']['mean']:.0f} s")  # fmt: skip
            beside = "; ".join(
                f"{name} {b['0.01']:.3f} / {b['0.1']:.3f}" for name, b in m["baselines"].items()
            )
            rows.append((setting, ours, beside))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits", help="comma-separated data specs")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--suite", default="standard")
    p.add_argument("--optimizer", choices=["published", "adam"], default="published")
    p.add_argument(
        "--crop-min",
        type=float,
        default=None,
        help="every method's smallest crop (0.3 on sprites: 8%% crops miss the object)",
    )
    args = p.parse_args(argv)

    from replab.data import make_dataset

    out = {"benchmark": "joint", "steps": args.steps, "batch_size": args.batch_size,
           "suite": args.suite, "optimizer": args.optimizer, "results": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-joint-") as tmp:
        for spec in args.data.split(","):
            data = make_dataset(spec)
            out["results"][spec] = {}
            for method in args.methods.split(","):
                runs = [one_run(method, spec, data, s, args, Path(tmp)) for s in range(args.seeds)]
                out["results"][spec][method] = {
                    "train_seconds": spread([r["train_seconds"] for r in runs]),
                    "probe_0.01": spread([r["probe"]["0.01"] for r in runs]),
                    "probe_0.1": spread([r["probe"]["0.1"] for r in runs]),
                    # the baselines' probes, averaged over the same evaluation seeds
                    "baselines": {
                        name: {
                            f: statistics.fmean(r["baselines"][name][f] for r in runs)
                            for f in ("0.01", "0.1")
                        }
                        for name in runs[0]["baselines"]
                    },  # fmt: skip
                }
                print(json.dumps({spec: {method: out["results"][spec][method]}}), flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
