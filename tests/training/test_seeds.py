"""Many seeds in one batched process: each seed's run equals the single run with that seed."""

import json

import pytest
import yaml
from rounding import assert_equal_up_to_summation_order
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError
from replab.data import make_dataset
from replab.methods import configure
from replab.run.checkpoints import load_tensors
from replab.training.loop import train
from replab.training.seeds import parse_seeds, train_seeds

FEW = {"train.steps": 4, "train.batch_size": 8, "train.log_every": 2, "train.checkpoint_every": 2}


def _records(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _logged(run_dir, key):
    return [r[key] for r in _records(run_dir)]


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize(
    "text, seeds",
    [("0-3", [0, 1, 2, 3]), ("7", [7]), ("0,3,7", [0, 3, 7]), ("2-4,9,3", [2, 3, 4, 9])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "3-1", "1-", "-2", "0-5000"])
def test_parse_seeds_refuses_bad_specs(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


def _single_run(root, data, overrides, seed):
    out = root / f"single-{data}-{seed}"
    cfg = configure("beta_vae", data, overrides={**overrides, "train.seed": seed})
    train(cfg, make_dataset(data), out, progress=False)
    return out


def _assert_same_run(ours, single, exact):
    """Final weights, logged values and config of two run directories agree: seed after seed
    bit for bit; with vmap, whose batched convolutions sum in another order, up to the bound of
    training/rounding.py. Logged values are batch means of the same sums, computed from weights
    whose few far-moved coordinates are those of about zero gradient, which the loss barely
    sees: 1e-4 relative is about a hundred times float32's rounding of such sums."""
    a, b = load_tensors(ours / "model.safetensors"), load_tensors(single / "model.safetensors")
    if exact:
        assert _max_diff(a, b) == 0.0
    else:
        cfg = yaml.safe_load((single / "config.yaml").read_text())["train"]
        assert_equal_up_to_summation_order(a, b, cfg["steps"], cfg["lr"])
    ours_log, single_log = _records(ours), _records(single)
    assert [r.keys() for r in ours_log] == [r.keys() for r in single_log]
    for x, y in zip(ours_log, single_log, strict=True):
        for key in y.keys() - {"samples_per_s"}:
            assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-6), key
    assert (ours / "config.yaml").read_text() == (single / "config.yaml").read_text()


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_each_seed_equals_its_single_run(tmp_path, vectorize):
    cfg = configure("beta_vae", "sprites", overrides=FEW)
    sprites = make_dataset("sprites")
    dirs = train_seeds(
        cfg, sprites, [0, 1], tmp_path / "multi", progress=False, vectorize=vectorize
    )
    assert [d.name for d in dirs] == ["seed-0", "seed-1"]
    for seed, d in zip((0, 1), dirs, strict=True):
        _assert_same_run(d, _single_run(tmp_path, "sprites", FEW, seed), exact=not vectorize)
    # the seeds are really different runs, so the equalities above are not trivial
    final = [load_tensors(d / "model.safetensors") for d in dirs]
    assert _max_diff(final[0], final[1]) > 1e-2


def test_a_seed_resumes_as_a_single_run(tmp_path):
    cfg = configure("beta_vae", "sprites", overrides=FEW)
    dirs = train_seeds(
        cfg,
        make_dataset("sprites"),
        [3, 5],
        tmp_path / "multi",
        stop_after=2,
        progress=False,
        vectorize=True,
    )
    assert not (dirs[1] / "model.safetensors").exists()
    resumed = train(
        configure("beta_vae", "sprites", overrides={**FEW, "train.seed": 5}),
        make_dataset("sprites"),
        dirs[1],
        resume=True,
        progress=False,
    )
    _assert_same_run(resumed.dir, _single_run(tmp_path, "sprites", FEW, 5), exact=False)


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_per_seed_gradient_clipping_matches_single_runs(tmp_path, vectorize):
    # a small threshold clips every step, each seed by its own gradient norm
    few = {**FEW, "train.grad_clip": 0.5, "train.lr": 1e-3}
    dirs = train_seeds(
        configure("beta_vae", "digits", overrides=few),
        make_dataset("digits"),
        [0, 1],
        tmp_path / "m",
        progress=False,
        vectorize=vectorize,
    )
    for seed, d in zip((0, 1), dirs, strict=True):
        single = _single_run(tmp_path, "digits", few, seed)
        assert max(_logged(single, "grad_norm")) > 0.5  # clipping really happened
        # the per-seed norm sums squares in another order than clip_grad_norm_: not bit for bit
        _assert_same_run(d, single, exact=False)


@pytest.mark.parametrize(
    "method, data, why",
    [("simclr", "digits", "cannot replay"), ("factor_vae", "sprites", "2 optimisers")],
)
def test_methods_that_cannot_be_batched_are_refused_before_writing(tmp_path, method, data, why):
    with pytest.raises(ConfigError, match=why):
        cfg = configure(method, data, overrides=FEW)
        train_seeds(cfg, make_dataset(data), [0, 1], tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()


def test_cli_seeds(tmp_path):
    runner = CliRunner()
    base = ["train", "vae", "--data", "digits", "--steps", "2", "-q", "train.log_every=1"]
    ok = runner.invoke(app, [*base, "--seeds", "0-1", "--out", str(tmp_path / "r")])
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.split() == [str(tmp_path / "r" / "seed-0"), str(tmp_path / "r" / "seed-1")]
    for args, message in [
        (["--seeds", "0-1", "--seed", "3"], "--seed and --seeds"),
        (["--seeds", "x"], "--seeds"),
        (["--seeds", "0-1", "--resume"], "cannot --resume"),
        (["--seeds", "0-1", "train.memory_format=channels_last"], "default layout"),
        (["--seeds", "0-1", "train.compile=default"], "runs eagerly; drop train.compile"),
        (["--seeds", "0-1", "train.log=tensorboard"], "drop train.log"),
    ]:
        bad = runner.invoke(app, [*base, *args, "--out", str(tmp_path / "bad")])
        assert bad.exit_code == 2 and message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    refused = runner.invoke(
        app,
        [
            "train",
            "simclr",
            "--data",
            "digits",
            "--seeds",
            "0-1",
            "-q",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert refused.exit_code == 2 and "one at a time" in refused.stderr
