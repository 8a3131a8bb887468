import json
import math

import numpy as np
import pytest
import torch
from rounding import assert_equal_up_to_summation_order

from replab.config import ConfigError, TrainConfig
from replab.data import make_dataset
from replab.methods import configure
from replab.run import load
from replab.run.checkpoints import checkpoint_dirs
from replab.training.loop import (
    BatchIndices,
    TrainingError,
    learning_rate,
    make_batch,
    memory_format_for,
    train,
)


def test_batch_indices_are_epoch_permutations():
    s = BatchIndices(n=10, batch_size=4, seed=0)
    stream = np.concatenate([s(i) for i in range(5)])  # 20 draws = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert np.array_equal(BatchIndices(10, 4, 0)(3), s(3))  # a pure function of (seed, step)
    assert not np.array_equal(BatchIndices(10, 4, 1)(0), s(0))


def test_batches_in_order_walk_the_data_set_epoch_after_epoch():
    s = BatchIndices(n=10, batch_size=4, seed=3, shuffle=False)
    assert [s(i).tolist() for i in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_learning_rate_warmup_then_cosine():
    cfg = configure(
        "vae",
        "digits",
        overrides={
            "train.lr": 1.0,
            "train.steps": 110,
            "train.warmup_steps": 10,
            "train.schedule": "cosine",
            "train.min_lr_ratio": 0.1,
        },
    )
    t = cfg.train
    assert learning_rate(t, 0) == pytest.approx(0.1)
    assert learning_rate(t, 9) == pytest.approx(1.0)
    assert learning_rate(t, 10) == pytest.approx(1.0)
    assert learning_rate(t, 60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert learning_rate(t, 110) == pytest.approx(0.1)


def test_resume_gives_the_same_weights(tmp_path, tiny_overrides, resume_is_exact):
    cfg = configure("beta_vae", "digits", overrides=tiny_overrides | {"train.checkpoint_every": 3})
    straight, resumed = resume_is_exact(cfg, stop=3)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b/metrics.jsonl").open()]
    assert steps == [2, 3, 4, 6]  # logged on every 2nd step and at the session boundary
    loaded = load(tmp_path / "b", device="cpu")
    x = torch.rand(5, 1, 8, 8)
    assert torch.allclose(loaded.encode(x), resumed.encode(x))


def test_resume_under_channels_last_gives_the_same_weights(resume_is_exact):
    # the checkpoint's weights and Adam moments are saved contiguous and loaded into a
    # channels-last model: the resumed run must still equal the straight one bit for bit
    few = {"train.steps": 4, "train.batch_size": 4, "train.checkpoint_every": 2}
    cfg = configure("beta_vae", "sprites", overrides=few | {"train.memory_format": "channels_last"})
    resume_is_exact(cfg, stop=2)


@pytest.mark.parametrize(
    "setting, precision, device, expected",
    [
        ("auto", "auto", "cpu", torch.contiguous_format),
        ("auto", "fp32", "cpu", torch.contiguous_format),
        ("auto", "bf16", "cpu", torch.channels_last),  # the one place it measured faster
        ("auto", "bf16", "cuda", torch.contiguous_format),  # not measured there
        ("contiguous", "bf16", "cpu", torch.contiguous_format),
        ("channels_last", "fp32", "cuda", torch.channels_last),
    ],
)
def test_memory_format_decision(setting, precision, device, expected):
    cfg = TrainConfig(memory_format=setting, precision=precision)
    assert memory_format_for(cfg, torch.device(device)) == expected


def test_channels_last_changes_the_layout_not_the_result(tmp_path):
    few = {"train.steps": 3, "train.batch_size": 4, "train.log_every": 1}
    cfg = configure("beta_vae", "sprites", overrides=few)
    plain = train(cfg, make_dataset("sprites"), tmp_path / "a", progress=False)
    cl_cfg = configure(
        "beta_vae", "sprites", overrides=few | {"train.memory_format": "channels_last"}
    )
    cl = train(cl_cfg, make_dataset(cl_cfg.data), tmp_path / "b", progress=False)
    # the multi-channel conv weights really were laid out channels-last ...
    convs = [p for p in cl.model.parameters() if p.ndim == 4 and min(p.shape[:2]) > 1]
    assert len(convs) >= 4
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not any(p.is_contiguous() for p in convs)
    # ... and trained to the same weights and losses, up to the order of float sums (the bound
    # and its reason: training/rounding.py)
    lr = cfg.train.lr
    assert_equal_up_to_summation_order(plain.model.state_dict(), cl.model.state_dict(), 3, lr)
    losses = [
        [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").open()]
        for run in ("a", "b")
    ]
    # a loss is a sum of positive terms over 4 x 4,096 pixels: reordered, float32's blocked sums
    # move it by about log2(n) units of 6e-8 relative (about 1e-6); 1e-5 leaves room tenfold
    assert np.allclose(losses[0], losses[1], rtol=1e-5)
    # the saved weights load into an ordinary model: the same weights, only the convolutions'
    # summation order differs, on codes of order 1
    x = torch.rand(2, 1, 64, 64)
    assert torch.allclose(load(tmp_path / "b", device="cpu").encode(x), cl.encode(x), atol=1e-5)


def test_run_dir_is_never_overwritten(tmp_path, tiny_overrides):
    cfg = configure("vae", "digits", overrides=tiny_overrides)
    train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    with pytest.raises(ConfigError, match="not a run directory"):
        train(cfg, make_dataset(cfg.data), tmp_path / "other", resume=True, progress=False)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from replab.methods.vae import VAE

    honest = VAE.loss

    def poisoned(self, batch, step):  # the loss turns NaN from the 5th step (index 4) on
        logs = honest(self, batch, step)
        if step >= 4:
            logs["loss"] = logs["loss"] * float("nan")
        return logs

    monkeypatch.setattr(VAE, "loss", poisoned)
    cfg = configure(
        "vae",
        "digits",
        overrides={"train.steps": 20, "train.log_every": 10, "train.checkpoint_every": 2},
    )
    with pytest.raises(TrainingError, match="non-finite .* step 6; .*step-00000004"):
        train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert [p.name for p in checkpoint_dirs(tmp_path / "run/checkpoint")] == [
        "step-00000002",
        "step-00000004",
    ]
    run = load(tmp_path / "run", device="cpu", checkpoint=True)
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_checkpoint_is_atomic_tmp_dirs_ignored(tmp_path, tiny_overrides):
    cfg = configure("vae", "digits", overrides=tiny_overrides)
    train(cfg, make_dataset(cfg.data), tmp_path / "run", stop_after=2, progress=False)
    # a crash in the middle of writing leaves a .tmp- folder, which resume must ignore
    (tmp_path / "run/checkpoint/.tmp-step-00000004").mkdir()
    assert [p.name for p in checkpoint_dirs(tmp_path / "run/checkpoint")] == ["step-00000002"]
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", resume=True, progress=False)
    assert (run.dir / "model.safetensors").exists()
    assert not list((tmp_path / "run/checkpoint").glob(".tmp-*"))


def test_subnormals_are_flushed_while_training_on_cpu_only(tmp_path, monkeypatch):
    from replab.methods.vae import VAE

    honest, seen = VAE.loss, []
    subnormal = torch.tensor([1e-39])  # below float32's smallest normal, 1.18e-38

    def probing(self, batch, step):
        seen.append((subnormal * 1.0).item())
        return honest(self, batch, step)

    monkeypatch.setattr(VAE, "loss", probing)
    assert (subnormal * 1.0).item() != 0.0
    cfg = configure("vae", "digits", overrides={"train.steps": 2, "train.device": "cpu"})
    train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    assert seen == [0.0, 0.0]
    assert (subnormal * 1.0).item() != 0.0  # the default is back afterwards


@pytest.mark.parametrize(
    "setting, device, made_on",
    [("auto", "meta", "meta"), ("host", "meta", "cpu"), ("auto", "cpu", "cpu")],
)
def test_batches_are_made_on_the_training_device_where_the_setting_allows(setting, device, made_on):
    # "meta" stands in for an accelerator: tensors with shapes and no storage
    data = make_dataset("sprites").split("train")
    batch = make_batch(data, np.arange(4), TrainConfig(data_device=setting), torch.device(device))
    assert {v.device.type for v in batch.values()} == {made_on}
    assert batch["x"].shape == (4, 1, 64, 64)
