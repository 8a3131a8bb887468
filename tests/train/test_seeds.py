"""Many seeds in one batched process: each seed's run equals the single run with that seed."""

import json

import pytest
from typer.testing import CliRunner

from replab.cli import app
from replab.config import ConfigError, resolve
from replab.train.io import load_tensors
from replab.train.loop import train
from replab.train.seeds import parse_seeds, train_seeds

FEW = {"train.steps": 4, "train.batch_size": 8, "train.log_every": 2, "train.checkpoint_every": 2}


def _logged(run_dir, key):
    return [json.loads(ln)[key] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _losses(run_dir):
    return _logged(run_dir, "loss")


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


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_each_seed_equals_its_single_run(tmp_path, vectorize):
    cfg = resolve("beta_vae", "sprites", overrides=FEW)
    dirs = train_seeds(cfg, [0, 1], tmp_path / "multi", progress=False, vectorize=vectorize)
    assert [d.name for d in dirs] == ["seed-0", "seed-1"]
    final = {}
    for seed, d in zip((0, 1), dirs, strict=True):
        single = tmp_path / f"single-{seed}"
        train(
            resolve("beta_vae", "sprites", overrides={**FEW, "train.seed": seed}),
            single,
            progress=False,
        )
        ours = load_tensors(d / "model.safetensors")
        ref = load_tensors(single / "model.safetensors")
        # vmap's batched convolutions sum in another order: equal up to float32 rounding, which
        # four Adam steps (lr 1e-4) leave far below one step's size; seed by seed, bit for bit
        assert _max_diff(ours, ref) < 2e-5 if vectorize else _max_diff(ours, ref) == 0.0
        assert _losses(d) == pytest.approx(_losses(single), rel=1e-5)
        assert (d / "config.yaml").read_text() == (single / "config.yaml").read_text()
        final[seed] = ours
    # the seeds are really different runs, so the equalities above are not trivial
    assert _max_diff(final[0], final[1]) > 1e-2


def test_a_seed_resumes_as_a_single_run(tmp_path):
    cfg = resolve("beta_vae", "sprites", overrides=FEW)
    dirs = train_seeds(
        cfg, [3, 5], tmp_path / "multi", stop_after=2, progress=False, vectorize=True
    )
    assert not (dirs[1] / "model.safetensors").exists()
    resumed = train(cfg_for(5), dirs[1], resume=True, progress=False)
    single = tmp_path / "single"
    train(cfg_for(5), single, progress=False)
    ours = load_tensors(resumed.dir / "model.safetensors")
    assert _max_diff(ours, load_tensors(single / "model.safetensors")) < 2e-5
    assert _losses(resumed.dir) == pytest.approx(_losses(single), rel=1e-5)


def cfg_for(seed):
    return resolve("beta_vae", "sprites", overrides={**FEW, "train.seed": seed})


def test_per_seed_gradient_clipping_matches_single_runs(tmp_path):
    # a tiny clip threshold clips every step, with each seed's own norm
    few = {**FEW, "train.grad_clip": 0.5, "train.lr": 1e-3}
    dirs = train_seeds(
        resolve("beta_vae", "digits", overrides=few), [0, 1], tmp_path / "m", progress=False
    )
    for seed, d in zip((0, 1), dirs, strict=True):
        single = tmp_path / f"s{seed}"
        train(
            resolve("beta_vae", "digits", overrides={**few, "train.seed": seed}),
            single,
            progress=False,
        )
        assert (
            _max_diff(
                load_tensors(d / "model.safetensors"), load_tensors(single / "model.safetensors")
            )
            < 2e-5
        )
        assert _logged(d, "grad_norm") == pytest.approx(_logged(single, "grad_norm"), rel=1e-4)


@pytest.mark.parametrize(
    "method, data, why",
    [("simclr", "digits", "cannot replay"), ("factor_vae", "sprites", "2 optimisers")],
)
def test_methods_that_cannot_be_batched_are_refused_before_writing(tmp_path, method, data, why):
    with pytest.raises(ConfigError, match=why):
        train_seeds(resolve(method, data, overrides=FEW), [0, 1], tmp_path / "m", progress=False)
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
