"""The pretext tasks through the command line and the training loop."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.data import make_dataset
from replab.methods import configure
from replab.run import load
from replab.training.loop import train


@pytest.mark.parametrize(
    "method, message",
    [
        ("colorization", "colorization needs colour images (3 channels, RGB); the data has 1"),
        ("context", "data: context 8x8 inputs are too small"),
        ("jigsaw", "data: jigsaw 8x8 inputs are too small"),
    ],
)
def test_refusals_through_the_cli_exit_2_one_line(tmp_path, method, message):
    result = CliRunner().invoke(
        app, ["train", method, "--data", "digits", "--out", str(tmp_path / "run"), "-q"]
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "method, data, overrides",
    [
        ("rotation", "digits", {}),
        ("context", "digits", {"patch_size": 2, "gap": 1, "jitter": 0}),
        ("jigsaw", "digits", {"tile_size": 2, "num_permutations": 10}),
        ("colorization", "color_sprites", {"train.lr": 1e-3}),
    ],
)
def test_each_method_trains_a_few_steps_with_finite_losses(tmp_path, method, data, overrides):
    cfg = configure(
        method,
        data,
        overrides={"train.steps": 3, "train.batch_size": 8, "train.log_every": 1, **overrides},
    )
    run = train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    logs = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(logs) == 3
    assert all(math.isfinite(r["loss"]) and 0 <= r["accuracy"] <= 1 for r in logs)
    loaded = load(tmp_path / "run", device="cpu")
    x = torch.rand(2, *run.model.info.shape)
    assert torch.allclose(loaded.encode(x), run.model.encode(x), atol=1e-6)
    if method == "colorization":  # the prior's counts are saved with the model
        assert loaded.model.bin_counts.sum() == 3 * 8 * 16 * 16
