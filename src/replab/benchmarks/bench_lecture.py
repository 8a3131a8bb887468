"""The lecture's claims on sprites at one budget: does beta-VAE's pressure to disentangle buy
generalisation to unseen combinations, and does any representation buy robustness?

``beta_vae`` and ``vae`` (beta 1) train on sprites at the same steps and batch for ``--seeds``
seeds, and SimCLR beside them (crops no smaller than 0.3 of the image: smaller ones miss the
object); the evaluation protocol's ``generalisation`` part gives the mean R² of the continuous
factors on the composition and extrapolation splits (linear readout), and its ``robustness``
part the linear probe's accuracy under PGD at each epsilon and its area, each beside the raw
pixels' and the random encoder's. Run: ``python -m replab.benchmarks.bench_lecture --seeds 3``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from replab.eval.results import spread

METHODS = ("beta_vae", "vae", "simclr")
OVERRIDES = {"simclr": {"crop_min": 0.3}}  # method -> its own overrides beyond the budget
PARTS = ("generalisation", "robustness")
SPLITS = ("composition", "extrapolation")


def one_run(method: str, data, seed: int, args, root: Path) -> dict:
    """Train ``method`` for one seed and read the two parts' figures per encoder."""
    from replab.eval.protocol import evaluate, suite_named
    from replab.methods import configure
    from replab.training.loop import train

    overrides = {"train.steps": args.steps, "train.batch_size": args.batch_size,
                 "train.seed": seed, "train.log_every": max(1, args.steps // 10)}  # fmt: skip
    overrides |= OVERRIDES.get(method, {})
    start = time.perf_counter()
    run = train(configure(method, args.data, overrides=overrides), data,
                root / f"{method}-{seed}", progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    suite = suite_named(args.suite).only(PARTS)
    result = evaluate(run, data, suite, seed=seed, log=lambda *a, **k: None)
    gen, rob = result.parts["generalisation"], result.parts["robustness"]
    return {
        "train_seconds": seconds,
        "generalisation": {
            enc: {split: gen.mean_r2(enc, split) for split in SPLITS} for enc in gen.scores
        },  # fmt: skip
        "pgd": {c: curves["pgd"] for c, curves in rob.accuracy.items()},
        "pgd_area": {c: rob.area(c) for c in rob.accuracy},
        "epsilons": rob.epsilons,
    }


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    for method, m in r["results"].items():
        setting = (f"lecture: {method} on {r['data']}, {r['steps']} steps, batch "
                   f"{r['batch_size']}, {r['suite']} suite, {r['seeds']} seeds")  # fmt: skip
        gen = m["generalisation"]
        baselines = [e for e in gen if e != "representation"]
        ours = "; ".join(
            f"{split} R² {gen['representation'][split]['mean']:.3f} +- "
            f"{gen['representation'][split]['sd']:.3f}" for split in SPLITS
        ) + (f"; PGD area {m['pgd_area']['representation']['mean']:.3f} +- "
             f"{m['pgd_area']['representation']['sd']:.3f}")  # fmt: skip
        beside = "; ".join(
            f"{e}: " + ", ".join(f"{split} {gen[e][split]['mean']:.3f}" for split in SPLITS)
            + (f", PGD area {m['pgd_area'][e]['mean']:.3f}" if e in m["pgd_area"] else "")
            for e in baselines
        )  # fmt: skip
        rows.append((setting, ours, beside))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="sprites")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--suite", default="standard")
    args = p.parse_args(argv)

    from replab.data import make_dataset

    data = make_dataset(args.data)
    out = {"benchmark": "lecture", "data": args.data, "steps": args.steps,
           "batch_size": args.batch_size, "suite": args.suite, "seeds": args.seeds,
           "results": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-lecture-") as tmp:
        for method in args.methods.split(","):
            runs = [one_run(method, data, s, args, Path(tmp)) for s in range(args.seeds)]
            encoders = list(runs[0]["generalisation"])
            out["results"][method] = {
                "train_seconds": spread([r["train_seconds"] for r in runs]),
                "generalisation": {
                    enc: {
                        split: spread([r["generalisation"][enc][split] for r in runs])
                        for split in SPLITS
                    }
                    for enc in encoders
                },  # fmt: skip
                "pgd_area": {
                    c: spread([r["pgd_area"][c] for r in runs]) for c in runs[0]["pgd_area"]
                },  # fmt: skip
                "epsilons": runs[0]["epsilons"],
                # accuracy per epsilon, averaged over seeds, per classifier
                "pgd": {
                    c: [
                        statistics.fmean(r["pgd"][c][i] for r in runs)
                        for i in range(len(runs[0]["epsilons"]))
                    ]
                    for c in runs[0]["pgd"]
                },  # fmt: skip
            }
            print(json.dumps({method: out["results"][method]}), flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
