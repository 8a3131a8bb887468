"""Training throughput of beta_vae on sprites at batch 64 (disentanglement_lib's setting).

Measures replab's whole training step (data rendering, forward, backward, Adam, logging) and, in
the same process and alternating with it, a plain PyTorch loop over the same model and the same
pre-rendered batches: the ratio says what replab's loop costs. With the ``bench`` extra
installed, it also times pythae's BetaVAE (pythae 0.1.2) with the same encoder and decoder,
trained by pythae's own trainer over the same images in memory, the way a pythae user trains
(``BaseTrainer.train_step``: its DataLoader, forward, Adam, loss bookkeeping; fp32, as pythae's
``amp`` option is CUDA-only and off for its BCE loss). replab is also timed with bf16 autocast
(``train.precision=bf16``), which CPUs with AMX run faster; under bf16 on a CPU the loop lays
conv weights and images out channels-last (``train.memory_format=auto``), so that row is also
timed with the default layout to show what the layout adds. Run:
``python -m replab.benchmarks.bench_train [--steps N] [--method M] [--data D]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from replab.benchmarks.timing import timed_overrides, warm_rate
from replab.data import make_dataset
from replab.methods import configure
from replab.run import build_model, pick_device
from replab.training.loop import train


def replab_rate(
    method: str, data: str, steps: int, batch: int, precision: str = "auto", layout: str = "auto"
) -> float:
    overrides = timed_overrides(
        steps, batch, **{"train.precision": precision, "train.memory_format": layout}
    )
    with tempfile.TemporaryDirectory() as tmp:
        cfg = configure(method, data, overrides=overrides)
        train(cfg, make_dataset(data), Path(tmp) / "run", progress=False)
        return warm_rate(Path(tmp) / "run")


def plain_rate(method: str, data: str, steps: int, batch: int) -> float:
    device = pick_device("auto")
    ds = make_dataset(data).split("train")
    cfg = configure(method, data)
    model = build_model(cfg, ds.info).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    batches = [ds.get_batch(rng.integers(0, len(ds), batch)) for _ in range(8)]
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]

    def step(b):
        loss = model.loss(b, 0)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(steps // 2):
        step(batches[i % 8])
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(steps // 2):
        step(batches[i % 8])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps // 2 * batch / (time.perf_counter() - t)


def pythae_rate(data: str, steps: int, batch: int) -> float | None:
    """pythae's BetaVAE (beta 4, Bernoulli likelihood, latent 10) with replab's conv encoder and
    decoder (disentanglement_lib's), one warm epoch then one timed epoch of ``steps // 2``
    batches; None when pythae is not installed."""
    try:
        from pythae.data.datasets import BaseDataset
        from pythae.models import BetaVAE, BetaVAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.trainers import BaseTrainer, BaseTrainerConfig
    except ImportError:
        return None
    from replab.nn.conv import ConvDecoder, ConvEncoder

    device = pick_device("auto")
    ds = make_dataset(data).split("train")
    shape, latent = tuple(ds.info.shape), 10
    x = ds.get_batch(np.random.default_rng(0).integers(0, len(ds), steps // 2 * batch))["x"]

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = ConvEncoder(shape)
            self.mean = torch.nn.Linear(self.net.out_dim, latent)
            self.logvar = torch.nn.Linear(self.net.out_dim, latent)

        def forward(self, x):
            h = self.net(x)
            return ModelOutput(embedding=self.mean(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self, encoder):
            super().__init__()
            self.net = ConvDecoder(latent, encoder.net, shape[0])

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    config = BetaVAEConfig(input_dim=shape, latent_dim=latent, beta=4.0, reconstruction_loss="bce")
    encoder = Encoder()
    model = BetaVAE(config, encoder=encoder, decoder=Decoder(encoder))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = BaseTrainer(
            model,
            BaseDataset(x, torch.zeros(len(x))),
            training_config=BaseTrainerConfig(
                output_dir=tmp,
                per_device_train_batch_size=batch,
                learning_rate=1e-4,
                num_epochs=2,
                no_cuda=device.type != "cuda",
            ),
        )
        with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
            trainer.prepare_training()  # optimiser, output folder, callbacks (progress bar)
            trainer.train_step(0)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            trainer.train_step(1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return len(x) / (time.perf_counter() - t)


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    """The document's rows: replab fp32 and bf16 beside the plain loop and pythae."""
    setting = f"train: {r['method']} on {r['data']}, batch {r['batch_size']}, {r['device']}"
    ours = (
        f"{r['replab_samples_per_s']:,.0f} samples/s; bf16 {r['replab_bf16_samples_per_s']:,.0f}"
        f" (default layout {r['replab_bf16_default_layout_samples_per_s']:,.0f})"
    )
    beside = (
        f"plain PyTorch loop {r['plain_pytorch_samples_per_s']:,.0f} (replab {r['ratio']:.2f}x)"
    )
    if "pythae_samples_per_s" in r:
        beside += (
            f"; pythae {r['pythae_samples_per_s']:,.0f} (replab {r['ratio_to_pythae']:.2f}x, "
            f"bf16 {r['ratio_to_pythae_bf16']:.2f}x)"
        )
    return [(setting, ours, beside)]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="beta_vae")
    p.add_argument("--data", default="sprites")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    ours, ours_bf16, ours_bf16_default_layout, plain, peer = [], [], [], [], []
    for _ in range(args.rounds):  # alternate, so drifts in machine load hit all alike
        ours.append(replab_rate(args.method, args.data, args.steps, args.batch_size))
        ours_bf16.append(
            replab_rate(args.method, args.data, args.steps, args.batch_size, precision="bf16")
        )
        ours_bf16_default_layout.append(
            replab_rate(
                args.method, args.data, args.steps, args.batch_size, "bf16", layout="contiguous"
            )
        )
        plain.append(plain_rate(args.method, args.data, args.steps, args.batch_size))
        if args.method == "beta_vae":
            peer.append(pythae_rate(args.data, args.steps, args.batch_size))
    result = {
        "benchmark": "train",
        "method": args.method,
        "data": args.data,
        "batch_size": args.batch_size,
        "device": str(pick_device("auto")),
        "threads": torch.get_num_threads(),
        "replab_samples_per_s": float(np.median(ours)),
        "plain_pytorch_samples_per_s": float(np.median(plain)),
    }
    result["ratio"] = result["replab_samples_per_s"] / result["plain_pytorch_samples_per_s"]
    # bf16 autocast (train.precision=bf16): the default on CUDA; on a CPU only where it is asked
    result["replab_bf16_samples_per_s"] = float(np.median(ours_bf16))
    result["replab_bf16_default_layout_samples_per_s"] = float(np.median(ours_bf16_default_layout))
    if peer and None not in peer:
        pythae = result["pythae_samples_per_s"] = float(np.median(peer))
        result["ratio_to_pythae"] = result["replab_samples_per_s"] / pythae
        result["ratio_to_pythae_bf16"] = result["replab_bf16_samples_per_s"] / pythae
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
