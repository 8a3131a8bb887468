"""train.log: TensorBoard (and W&B) receive what metrics.jsonl gets, and decoder figures."""

import json
import sys
import types

import pytest

from replab.config import ConfigError
from replab.data import make_dataset
from replab.methods import configure
from replab.training.loop import train

FEW = {"train.steps": 4, "train.log_every": 2, "train.checkpoint_every": 2,
       "train.batch_size": 8}  # fmt: skip


def events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    return acc


def test_tensorboard_gets_the_metrics_lines_and_the_decoder_figures(tmp_path):
    cfg = configure("vae", "digits", overrides=FEW | {"train.log": "tensorboard"})
    train(cfg, make_dataset("digits"), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    acc = events(tmp_path / "run")
    for key in ("loss", "lr", "samples_per_s"):
        logged = [(e.step, e.value) for e in acc.Scalars(key)]
        assert logged == [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in lines], key
    assert set(acc.Tags()["images"]) == {"reconstructions", "traversal"}
    for tag in ("reconstructions", "traversal"):
        assert [e.step for e in acc.Images(tag)] == [2, 4]  # at each checkpoint
    # 8 inputs above their 8 reconstructions; 10 latents x 7 values, 8x8 pixels each
    recon, traversal = acc.Images("reconstructions")[-1], acc.Images("traversal")[-1]
    assert recon.height * recon.width >= 16 * 64
    assert traversal.height * traversal.width >= 70 * 64


def test_a_model_without_a_decoder_logs_numbers_only(tmp_path):
    cfg = configure("rotation", "digits", overrides=FEW | {"train.log": "tensorboard"})
    train(cfg, make_dataset("digits"), tmp_path / "run", progress=False)
    acc = events(tmp_path / "run")
    assert "loss" in acc.Tags()["scalars"] and acc.Tags()["images"] == []


def test_wandb_receives_the_same_records_through_the_same_hook(tmp_path, monkeypatch):
    calls = []

    class FakeRun:
        def log(self, values, step):
            calls.append((step, values))

        def finish(self):
            calls.append("finish")

    fake = types.SimpleNamespace(init=lambda **kw: FakeRun(), Image=lambda a: ("image", a.shape))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = configure("vae", "digits", overrides=FEW | {"train.log": "wandb"})
    train(cfg, make_dataset("digits"), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scalars = [(s, v) for s, v in calls[:-1] if "loss" in v]
    assert [s for s, _ in scalars] == [r["step"] for r in lines]
    assert scalars[0][1]["loss"] == pytest.approx(lines[0]["loss"])
    figures = [v for c in calls[:-1] for v in [c[1]] if "traversal" in v]
    assert len(figures) == 2 and figures[0]["traversal"] == ("image", (8, 8 * 70, 1))
    assert calls[-1] == "finish"


def test_a_missing_logging_library_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails
    cfg = configure("vae", "digits", overrides=FEW | {"train.log": "wandb"})
    with pytest.raises(ConfigError, match="train.log=wandb needs wandb: pip install wandb"):
        train(cfg, make_dataset("digits"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
