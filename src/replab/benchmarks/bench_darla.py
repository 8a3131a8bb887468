"""DARLA's zero-shot policy transfer (``replab darla``): source and target returns per encoder.

Runs ``replab.darla.run_darla`` with its defaults (3 seeds; every encoder trained 1,500 steps on
the source frames, a DQN 15,000 environment steps on each encoder's codes) in a temporary
folder and keeps its ``darla.json`` summary. Run: ``python -m replab.benchmarks.bench_darla``.
"""

from __future__ import annotations

import argparse
import json
import tempfile


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name, e in r["encoders"].items():
        setting = (f"darla: DQN on {name}, {r['seeds']} seeds, encoders "
                   f"{r['encoder_steps']} steps, DQN {r['dqn_steps']} steps")  # fmt: skip
        ratio = e["ratio"]["runs"]
        ours = (f"source {e['source']['mean']:.2f} +- {e['source']['sd']:.2f}, target "
                f"{e['target']['mean']:.2f} +- {e['target']['sd']:.2f}, ratios "
                + ", ".join("-" if v is None else f"{v:.2f}" for v in ratio)
                + f"; {e['seconds']['mean']:.0f} s a seed")  # fmt: skip
        rows.append((setting, ours, f"random policy {r['random_policy']:.2f}"))
    return rows


def main(argv=None) -> dict:
    from replab.darla import DAE_STEPS, ENCODER_STEPS, run_darla
    from replab.eval.results import jsonable
    from replab.rl.dqn import DQNConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--encoder-steps", type=int, default=ENCODER_STEPS)
    p.add_argument("--dae-steps", type=int, default=DAE_STEPS)
    p.add_argument("--dqn-steps", type=int, default=DQNConfig.steps)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-darla-") as tmp:
        summary = run_darla(
            tmp, seeds=args.seeds, encoder_steps=args.encoder_steps, dae_steps=args.dae_steps,
            dqn=DQNConfig(steps=args.dqn_steps),
        )  # fmt: skip
    return jsonable(summary)  # a ratio without a source return is NaN: null in JSON


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
