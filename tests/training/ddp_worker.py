"""Worker for the two-process (gloo) test: trains a deterministic model under DDP."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import torch
from torch import nn

from replab.config import param
from replab.data import make_dataset
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Images
from replab.registry import METHODS, register_method


@dataclass
class TinyConfig:
    hidden: int = param(16, min=1)


if "_tiny_autoencoder" not in METHODS:

    @register_method("_tiny_autoencoder", pillar="generative")
    class TinyAutoencoder(Method, Encoder):
        """A deterministic autoencoder (no sampling noise), so runs can be compared exactly."""

        Config = TinyConfig
        accepts = Images()

        def __init__(self, cfg, info):
            super().__init__(cfg, info)
            d = int(torch.tensor(info.shape).prod())
            self.enc = nn.Linear(d, cfg.hidden)
            self.dec = nn.Linear(cfg.hidden, d)

        def encode(self, x):
            return torch.tanh(self.enc(x.flatten(1)))

        def loss(self, batch, step):
            x = batch["x"].flatten(1)
            return {"loss": (self.dec(self.encode(batch["x"])) - x).pow(2).sum(1).mean()}


def run(
    rank: int, world: int, port: int, out: str, overrides: dict,
    method: str = "_tiny_autoencoder", data: str = "digits",
) -> None:  # fmt: skip
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from replab.methods import configure
    from replab.training.loop import train

    cfg = configure(method, data, overrides=overrides)
    train(cfg, make_dataset(cfg.data), out, progress=False)
    import torch.distributed as dist

    if dist.is_initialized():
        # both sides done before either closes its connections: a peer closing first has
        # aborted gloo's transport thread ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    overrides = {"train.steps": 5, "train.batch_size": 16, "train.lr": 1e-2,
                 "train.log_every": 5, "train.grad_clip": 0.0}  # fmt: skip
    if len(sys.argv) > 5:  # another method: JSON {"method", "data", "overrides"}
        spec = json.loads(sys.argv[5])
        run(rank, world, port, out, spec["overrides"], spec["method"], spec["data"])
    else:
        run(rank, world, port, out, overrides)
