"""Transfer under a domain shift: the default shifted renderings, a shift that changes nothing
gives no drop, and the bad inputs the command line refuses in one line with exit status 2."""

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.data import make_dataset
from replab.data.base import DataInfo, GroundTruthDataset
from replab.eval.context import EvaluationError
from replab.eval.parts.transfer import open_target
from replab.eval.protocol import SUITES, evaluate
from replab.methods import configure
from replab.training.loop import train

SMALL = dataclasses.replace(
    SUITES["quick"], n_train=200, n_test=100, transfer_points=600, parts=("transfer",)
)


@pytest.fixture(scope="module")
def sprites_run(tmp_path_factory):
    data = make_dataset("sprites")
    cfg = configure("vae", "sprites", overrides={"train.steps": 2, "train.batch_size": 8})
    return train(cfg, data, tmp_path_factory.mktemp("t") / "run", progress=False), data


def test_inverted_sprites_are_one_minus_sprites():
    f = np.array([[0, 5, 3, 10, 20], [2, 0, 17, 31, 0]])
    plain, inverted = make_dataset("sprites"), make_dataset("inverted_sprites")
    assert np.array_equal(inverted.observations(f).numpy(), 1 - plain.observations(f).numpy())
    assert plain.shifted_rendering == "inverted_sprites"
    assert make_dataset("color_sprites").shifted_rendering == "noisy_sprites"


def test_the_same_rendering_as_target_gives_no_drop(sprites_run):
    run, data = sprites_run
    suite = SMALL.with_options(transfer_data="sprites")
    t = evaluate(run, data, suite, seed=0, log=lambda m: None).parts["transfer"]
    assert t.target == "sprites"
    for enc, a in t.accuracy.items():
        assert a["in_domain"] == a["shifted"], enc


def test_the_default_target_is_the_data_sets_shifted_rendering(sprites_run):
    run, data = sprites_run
    t = evaluate(run, data, SMALL, seed=0, log=lambda m: None).parts["transfer"]
    assert (t.source, t.target) == ("sprites", "inverted_sprites")
    assert list(t.accuracy) == ["representation", "pixels_pca256", "random_encoder"]
    back = type(t).from_json(t.to_json())
    assert back.accuracy == t.accuracy
    for enc, a in t.to_json()["accuracy"].items():
        assert 0 <= a["shifted"] <= 1 and a["drop"] == a["in_domain"] - a["shifted"], enc


@pytest.mark.parametrize(
    "spec, message",
    [
        ("color_sprites", "has inputs of shape (3, 64, 64), sprites has (1, 64, 64)"),
        ("digits", "has inputs of shape"),
        ("nonsense", "unknown data set"),
    ],
)
def test_a_target_of_another_shape_or_kind_is_refused(spec, message):
    with pytest.raises(EvaluationError, match="--transfer-data") as e:
        open_target(make_dataset("sprites"), spec)
    assert message in str(e.value) and "\n" not in str(e.value)


class OtherFactors(GroundTruthDataset):
    """64x64 grey images of other factors than sprites' (a square's size and brightness)."""

    name = "other"
    factor_names = ["size", "brightness"]
    factor_sizes = [4, 3]
    label_factor = "size"
    info = DataInfo(shape=(1, 64, 64), num_classes=4)

    def observations(self, factors):
        f = np.asarray(factors)
        x = torch.zeros(len(f), 1, 64, 64)
        for i, (size, bright) in enumerate(f):
            x[i, 0, : 8 * (size + 1), : 8 * (size + 1)] = 0.3 * (bright + 1)
        return x


def test_a_target_with_other_factors_is_refused():
    with pytest.raises(EvaluationError, match="sprites does not have other's factors"):
        open_target(OtherFactors(), "sprites")


runner = CliRunner()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epsilons", "1,two"], "--epsilons: epsilons must be numbers"),
        (["--transfer-data", "color_sprites"], "has inputs of shape"),
        (["--extrapolation-share", "1.5"], "--extrapolation-share must lie in (0, 1)"),
        (["--extrapolation-share", "0.999", "--only", "generalisation"], "leaves nothing to"),
    ],
)
def test_bad_options_exit_2_in_one_line_and_write_nothing(sprites_run, args, message):
    run, _ = sprites_run
    result = runner.invoke(app, ["eval", str(run.dir), "--suite", "quick", *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and "..." not in ln]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (run.dir / "eval.json").exists()
