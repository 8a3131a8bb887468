"""Objects and scenes on a CPU budget: Slot Attention and MONet segmenting tetrominoes, GQN
predicting unseen views of rooms, each at its defaults beside the protocol's baselines.

Each method trains once (``--seed``, 0 by default) for its own steps and batch (``BUDGETS``,
chosen to fit about 15 minutes on 2 CPU cores), then the protocol runs its object or scene part:
``segmentation`` (ARI and foreground ARI beside random masks and colour k-means) or
``view_prediction`` (MSE and PSNR beside the mean context view, the nearest-yaw view and the
empty representation). The loss's first and last logged values say whether it fell. Run:
``python -m replab.benchmarks.bench_objects [--methods slot_attention,monet,gqn] [--scale 1.0]
[--seed 0]``. Every seed is scored on the same test images (the protocol's seed 0), so seeds
compare paired.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

# method -> (data, steps, batch size, the part that scores it)
BUDGETS = {
    "slot_attention": ("tetrominoes", 5000, 32, "segmentation"),
    "monet": ("tetrominoes", 1500, 16, "segmentation"),
    "gqn": ("rooms", 3000, 16, "view_prediction"),
}


def one_run(method: str, args, root: Path) -> dict:
    from replab.data import make_dataset
    from replab.eval.protocol import evaluate, suite_named
    from replab.methods import configure
    from replab.training.loop import train

    spec, steps, batch, part = BUDGETS[method]
    steps = max(1, round(steps * args.scale))
    data = make_dataset(spec)
    overrides = {"train.steps": steps, "train.batch_size": batch, "train.seed": args.seed,
                 "train.log_every": max(1, steps // 20)}  # fmt: skip
    start = time.perf_counter()
    run = train(configure(method, spec, overrides=overrides), data, root / method, progress=False)
    seconds = time.perf_counter() - start
    logs = [json.loads(line) for line in (root / method / "metrics.jsonl").open()]
    losses = [r["loss"] for r in logs if "loss" in r]
    suite = suite_named(args.suite).only((part,))
    start = time.perf_counter()
    result = evaluate(run, data, suite, seed=0, log=lambda *a, **k: None).parts[part]
    return {
        "data": spec, "steps": steps, "batch_size": batch, "train_seconds": seconds,
        "eval_seconds": time.perf_counter() - start, "first_loss": losses[0],
        "last_loss": losses[-1], "part": part, "scores": result.scores,
    }  # fmt: skip


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    for method, m in r["results"].items():
        minutes = m["train_seconds"] / 60
        setting = (f"objects: {method} on {m['data']}, {m['steps']} steps, batch "
                   f"{m['batch_size']}, seed {r.get('seed', 0)}, {minutes:.1f} min, "
                   f"{r['suite']} suite")  # fmt: skip
        metrics = ("ari", "fg_ari") if m["part"] == "segmentation" else ("mse", "psnr")
        ours = ", ".join(f"{k} {m['scores']['model'][k]:.3f}" for k in metrics)
        ours += f"; loss {m['first_loss']:.4g} -> {m['last_loss']:.4g}"
        beside = "; ".join(
            f"{name}: " + ", ".join(f"{k} {s[k]:.3f}" for k in metrics)
            for name, s in m["scores"].items() if name != "model"
        )  # fmt: skip
        rows.append((setting, ours, beside))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(BUDGETS))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every method's steps")
    p.add_argument("--suite", default="standard")
    p.add_argument("--seed", type=int, default=0, help="the training seed")
    args = p.parse_args(argv)
    unknown = set(args.methods.split(",")) - set(BUDGETS)
    if unknown:
        p.error(f"unknown method {sorted(unknown)[0]!r}; choose from {', '.join(BUDGETS)}")
    out = {"benchmark": "objects", "suite": args.suite, "scale": args.scale, "seed": args.seed,
           "results": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-objects-") as tmp:
        for method in args.methods.split(","):
            out["results"][method] = one_run(method, args, Path(tmp))
            print(json.dumps({method: out["results"][method]}), flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
