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


# ------------------------------------------------------------------------------ run formats


@pytest.fixture
def copied_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def _edit_config(run, edit):
    import yaml

    values = yaml.safe_load((run / "config.yaml").read_text())
    edit(values)
    (run / "config.yaml").write_text(yaml.safe_dump(values))


def test_a_new_run_says_its_format_and_an_older_one_loads_as_format_1(copied_run):
    import json

    from replab.run.directory import RUN_FORMAT, run_format

    assert json.loads((copied_run / "replab.json").read_text()) == {"run_format": RUN_FORMAT}
    (copied_run / "replab.json").unlink()  # as replab 0.1 wrote it
    assert run_format(copied_run) == 1
    assert load(copied_run, device="cpu").encode(torch.rand(2, 1, 8, 8)).shape[0] == 2


def test_an_old_run_with_a_key_no_migration_covers_is_refused_naming_its_format(copied_run):
    from typer.testing import CliRunner

    from replab.cli import app

    (copied_run / "replab.json").unlink()
    _edit_config(copied_run, lambda v: v["model"].update(shift=3))
    with pytest.raises(ConfigError) as e:
        load(copied_run, device="cpu")
    message = str(e.value)
    assert "a run of format 1 (replab 0.1) that no migration brings to format 2" in message
    assert "model.shift" in message and "Load it with replab 0.1, or retrain it" in message
    r = CliRunner().invoke(app, ["eval", str(copied_run), "--data", "digits"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "format 1 (replab 0.1)" in r.stderr


def test_a_migration_brings_a_renamed_key_to_the_current_format(copied_run, monkeypatch):
    from replab.run import directory

    def renamed(values):
        values["model"]["latent_dim"] = values["model"].pop("code_size")
        return values

    (copied_run / "replab.json").unlink()
    _edit_config(copied_run, lambda v: v["model"].update(code_size=v["model"].pop("latent_dim")))
    monkeypatch.setattr(directory, "MIGRATIONS", {1: renamed})
    cfg = read_config(copied_run)
    assert cfg.model.latent_dim == 3  # the fixture's run: latent_dim=3, now under the old name
    assert load(copied_run, device="cpu").model.cfg.latent_dim == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"run_format": 3}', "written by a newer replab (run format 3; this replab reads"),
        ("{not json", "replab.json is unreadable or names no run_format"),
        ('{"run_format": "two"}', "replab.json's run_format 'two' is not valid"),
    ],
)
def test_run_formats_it_cannot_read_are_refused_in_one_line(copied_run, content, message):
    (copied_run / "replab.json").write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        read_config(copied_run)
