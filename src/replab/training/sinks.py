"""Where a run's logs go besides ``metrics.jsonl``: TensorBoard or Weights & Biases.

``train.log`` picks one (``jsonl``, the default, adds none). A sink receives the same records
``metrics.jsonl`` gets, and at each checkpoint, for a model with a decoder, two figures drawn
from the first training images: their reconstructions (top row the inputs) and a latent
traversal of the first image (a row per latent, -3..3 or the model's own ``latent_range``).
Only the main process writes. Both libraries are optional: asking for one that is not installed
is a one-line ConfigError before training starts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch

from replab.config import ConfigError, RunConfig
from replab.methods.capabilities import Decoder

TRAVERSAL_STEPS = 7
TRAVERSAL_LATENTS = 10  # the first ten latents: a figure, not a study


class Sink(ABC):
    """One logging destination beside ``metrics.jsonl``."""

    @abstractmethod
    def scalars(self, step: int, record: dict) -> None:
        """The numbers of one ``metrics.jsonl`` line."""

    @abstractmethod
    def images(self, step: int, name: str, images: torch.Tensor) -> None:
        """A figure: images [n, C, H, W] in [0, 1], shown as a grid."""

    def close(self) -> None:
        return None


class TensorBoardSink(Sink):
    """Event files under ``RUN/tensorboard`` (``tensorboard --logdir RUN/tensorboard``)."""

    def __init__(self, run_dir: Path, cfg: RunConfig):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "train.log=tensorboard needs tensorboard: pip install 'replab[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", f"```\n{cfg.to_dict()}\n```", 0)

    def scalars(self, step, record):
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def images(self, step, name, images):
        self.writer.add_images(name, images.clamp(0, 1), step)
        self.writer.flush()

    def close(self):
        self.writer.close()


class WandbSink(Sink):
    """A Weights & Biases run (its own settings: ``WANDB_PROJECT``, ``WANDB_MODE``, ...)."""

    def __init__(self, run_dir: Path, cfg: RunConfig):
        try:
            import wandb
        except ImportError:
            raise ConfigError("train.log=wandb needs wandb: pip install wandb") from None
        self.wandb = wandb
        self.run = wandb.init(
            dir=str(run_dir), name=Path(run_dir).name, config=cfg.to_dict(), reinit=True
        )

    def scalars(self, step, record):
        numbers = {k: v for k, v in record.items() if k != "step" and isinstance(v, int | float)}
        self.run.log(numbers, step=step)

    def images(self, step, name, images):
        grid = torch.cat(list(images.clamp(0, 1)), dim=-1)  # one row, side by side
        self.run.log({name: self.wandb.Image(grid.permute(1, 2, 0).numpy())}, step=step)

    def close(self):
        self.run.finish()


SINKS = {"tensorboard": TensorBoardSink, "wandb": WandbSink}


def open_sink(run_dir: Path, cfg: RunConfig) -> Sink | None:
    """The sink ``train.log`` asks for, or None for ``metrics.jsonl`` alone."""
    kind = cfg.train.log
    return None if kind == "jsonl" else SINKS[kind](run_dir, cfg)


@torch.no_grad()
def decoder_figures(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reconstructions of ``x`` (inputs above, reconstructions below) and a traversal of the
    first example's latents, for a model with a decoder; none for any other model."""
    if not isinstance(model, Decoder):
        return {}
    was_training = model.training
    model.eval()
    try:
        recon = model.reconstruct(x)
        z = model.latents(x[:1])
        latents = min(z.shape[1], TRAVERSAL_LATENTS)
        bounds = model.latent_range(x)
        values = torch.linspace(-3, 3, TRAVERSAL_STEPS, device=z.device)
        rows = []
        for i in range(latents):
            zs = z.repeat(TRAVERSAL_STEPS, 1)
            if bounds is None:
                zs[:, i] = values
            else:
                lo, hi = bounds[0][i], bounds[1][i]
                zs[:, i] = lo + (hi - lo) * (values + 3) / 6
            rows.append(model.decode(zs))
    finally:
        model.train(was_training)
    return {
        "reconstructions": torch.cat([x, recon]).float().cpu(),
        "traversal": torch.cat(rows).float().cpu(),
    }
