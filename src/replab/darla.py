"""DARLA's comparison as one call (``replab darla``): which representation lets a policy learned
in the source domain act in a target domain it never saw?

For each seed: each encoder (``darla``, ``beta_vae``, ``vae`` (beta 1), trained on the source
domain's frames ``seek_avoid``; the same architecture untrained; and raw pixels, average-pooled
2x2 to 32x32) gives frozen features, standardised over frames of random source states; a DQN
(``rl.dqn``) learns the seek-avoid task on them in the source domain, then its greedy policy is
scored zero-shot in the target domain, whose colour-shape pairings the source never shows.
Written to ``darla.json``: per encoder and seed the source return, the target return and their
ratio, beside a random policy's return.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from replab.data import make_dataset
from replab.eval.results import jsonable, spread
from replab.files import atomic_write_json
from replab.methods import configure
from replab.methods.capabilities import encode_in_batches, model_encoder, slices
from replab.rl import DARLA_DAE_STEPS as DAE_STEPS
from replab.rl import DARLA_ENCODER_STEPS as ENCODER_STEPS
from replab.rl import DARLA_ENCODERS as ENCODERS
from replab.rl import DARLA_RESULT_FILE as RESULT_FILE
from replab.rl.dqn import CachedFeatures, DQNConfig, mean_return, random_return, train_dqn
from replab.rl.seek_avoid import SeekAvoidEnv
from replab.run import build_model
from replab.training.loop import train

# the encoders' learning rate: at disentanglement_lib's 1e-4, beta_vae's KL was 5 nats after
# 1,500 steps on the 5x5 grid first tried (it had learned almost nothing); the three share it
ENCODER_LR = 1e-3
TRAINED = ("darla", "beta_vae", "vae")
STANDARDISE_FRAMES = 2000
# the pixels' DQN reads frames average-pooled 2x2: on all 12,288 inputs its first layer made
# its DQN the slowest part of the comparison (78 s for 6,000 steps)
PIXEL_POOL = 2


def _features(encode: Callable, data, seed: int) -> Callable:
    """features(obs, info): ``encode`` of the frame, standardised by its mean and spread over
    frames of random source states."""
    factors = data.sample_factors(STANDARDISE_FRAMES, np.random.default_rng(seed))
    frames = data.observations(factors)
    codes = encode_in_batches(encode, slices(frames, 256), np.float32)
    mean, std = codes.mean(0), codes.std(0)
    std = np.where(std > 1e-6, std, 1.0)

    def features(obs, info):
        with torch.no_grad():
            z = encode(torch.from_numpy(obs)[None])
        z = z.detach().float().cpu().numpy()[0] if isinstance(z, torch.Tensor) else z[0]
        return (z - mean) / std

    return features


def run_darla(
    out: str | Path,
    *,
    seeds: int = 3,
    encoder_steps: int = ENCODER_STEPS,
    dae_steps: int = DAE_STEPS,
    dqn: DQNConfig | None = None,
    episodes: int = 30,
    encoders: tuple[str, ...] = ENCODERS,
    log=print,
) -> dict:
    """Train and score every encoder for ``seeds`` seeds; write and return ``darla.json``."""
    unknown = set(encoders) - set(ENCODERS)
    if unknown:
        raise ValueError(f"unknown encoder {sorted(unknown)[0]!r}; choose from {ENCODERS}")
    dqn = dqn or DQNConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_dataset("seek_avoid")
    source, target = SeekAvoidEnv("source"), SeekAvoidEnv("target")
    results: dict[str, dict[str, list[float]]] = {
        e: {"source": [], "target": [], "ratio": [], "seconds": []} for e in encoders
    }
    for seed in range(seeds):
        for name in encoders:
            start = time.perf_counter()
            if name in TRAINED:
                overrides = {"train.steps": encoder_steps, "train.seed": seed,
                             "train.lr": ENCODER_LR,
                             "train.log_every": max(1, encoder_steps // 10)}  # fmt: skip
                if name == "darla":
                    overrides["dae_steps"] = dae_steps
                cfg = configure(name, "seek_avoid", overrides=overrides)
                run = train(cfg, data, out / f"{name}-{seed}", progress=False)
                encode = model_encoder(run.model)
            elif name == "random_encoder":
                torch.manual_seed(seed)
                model = build_model(configure("beta_vae", "seek_avoid"), data.info)
                encode = model_encoder(model)
            else:
                encode = lambda x: F.avg_pool2d(x, PIXEL_POOL).flatten(1)  # noqa: E731
            features = CachedFeatures(_features(encode, data, seed))
            q = train_dqn(source, features, dqn, seed)
            r_source = mean_return(source, features, q, episodes, seed + 1000)
            r_target = mean_return(target, features, q, episodes, seed + 1000)
            row = results[name]
            row["source"].append(r_source)
            row["target"].append(r_target)
            row["ratio"].append(r_target / r_source if r_source > 0 else float("nan"))
            row["seconds"].append(time.perf_counter() - start)
            log(f"seed {seed} {name}: source {r_source:.2f}, target {r_target:.2f}")
    summary = {
        "benchmark": "darla",
        "seeds": seeds,
        "encoder_steps": encoder_steps,
        "dae_steps": dae_steps,
        "dqn_steps": dqn.steps,
        "episodes": episodes,
        "random_policy": random_return(source, episodes, 0),
        "encoders": {e: {k: spread(v) for k, v in r.items()} for e, r in results.items()},
    }
    atomic_write_json(out / RESULT_FILE, jsonable(summary))  # NaN (no source return): null
    return summary
