"""The run directory: what a run writes, and loading it back without the data."""

import numpy as np
import pytest
import torch

from replab.config import ConfigError
from replab.data import make_dataset
from replab.data.base import DataInfo
from replab.methods import configure
from replab.run import (
    build_model,
    load,
    pick_device,
    prepare_run_dir,
    read_config,
    read_data_info,
)
from replab.training.loop import train

FAST = {"train.steps": 4, "train.log_every": 2, "train.checkpoint_every": 2}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    cfg = configure("vae", "digits", overrides=FAST | {"latent_dim": 3})
    train(cfg, make_dataset("digits"), out, progress=False)
    return out


def test_a_run_directory_holds_config_shape_weights_checkpoints_and_logs(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "data.json", "model.safetensors", "checkpoint", "metrics.jsonl"} <= names
    assert sorted(p.name for p in (run_dir / "checkpoint").iterdir()) == [
        "step-00000002",
        "step-00000004",
    ]
    cfg = read_config(run_dir)
    assert cfg.method == "vae" and cfg.model.latent_dim == 3 and cfg.train.steps == 4
    info = read_data_info(run_dir)
    assert info.shape == (1, 8, 8) and info.num_classes == 10


def test_load_needs_no_data_and_encodes_in_batches_as_the_model_does(run_dir):
    run = load(run_dir, device="cpu")
    assert run.has_encoder and not run.model.training
    x = make_dataset("digits").get_batch(np.arange(10))["x"]
    with torch.no_grad():
        whole = run.model.encode(x)
    batched = run.encode(x, batch_size=3)  # four calls of encode
    assert batched.dtype == torch.float32 and torch.allclose(batched, whole, atol=1e-6)
    embedded = run.embed(make_dataset("digits").subset(np.arange(10)), batch_size=4)
    assert np.allclose(embedded, whole.numpy(), atol=1e-6)
    # the last checkpoint is the final model here
    latest = load(run_dir, device="cpu", checkpoint=True)
    for a, b in zip(latest.model.parameters(), run.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_unfinished_and_foreign_directories_are_refused(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load(tmp_path)
    unfinished = tmp_path / "unfinished"
    cfg = configure("vae", "digits", overrides=FAST)
    train(cfg, make_dataset("digits"), unfinished, stop_after=2, progress=False)
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load(unfinished)
    assert load(unfinished, checkpoint=True).config.train.steps == 4
    with pytest.raises(ConfigError, match="already exists"):
        prepare_run_dir(run_dir, resume=False)
    with pytest.raises(ConfigError, match="cannot resume"):
        prepare_run_dir(tmp_path / "nothing", resume=True)


def test_a_model_is_built_for_the_shape_it_is_given():
    cfg = configure("vae", "digits")
    model = build_model(cfg, DataInfo(shape=(1, 8, 8)))
    assert model.encode(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_devices_that_are_not_there_are_refused():
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="train.device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            pick_device("cuda")
