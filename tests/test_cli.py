"""The command line: exit status 2 and one line for bad input, nothing written."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from replab.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


FAST = ["train.log_every=2", "train.checkpoint_every=2"]


def test_list_shows_methods_with_pillars_and_data_sets():
    code, out, _ = invoke("list")
    assert code == 0
    assert "beta_vae" in out and "generative" in out and "digits" in out and "idx:PATH" in out


def test_train_prints_run_dir_and_writes_the_run(tmp_path):
    code, out, err = invoke(
        "train",
        "beta_vae",
        "--data",
        "digits",
        "--steps",
        4,
        "--out",
        tmp_path / "run",
        "-q",
        "beta=2",
        *FAST,
    )
    assert code == 0, err
    assert out.strip() == str(tmp_path / "run")
    for name in ("config.yaml", "data.json", "model.safetensors", "metrics.jsonl"):
        assert (tmp_path / "run" / name).is_file()
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert "beta: 2.0" in cfg and "steps: 4" in cfg


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "nope"], "unknown data set 'nope'; choose from:"),
        (["--data", "digits", "--batch-size", "-2"], "train.batch_size: must be >= 1"),
        (["--data", "digits", "beta=-1"], "model.beta: must be >= 0"),
        (["--data", "digits", "beta=big"], "model.beta: expected a number"),
        (["--data", "digits", "colour=red"], "unknown key colour"),
        (["--data", "digits", "justakey"], "must look like key=value"),
        (["--data", "idx:/does/not/exist"], "/does/not/exist"),
        (["--data", "digits", "--device", "cuda:7"], "train.device"),
        (["--data", "digits", "--resume"], "--resume needs --out"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("train", "beta_vae", *args, "-q")
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no run directory, not even runs/


def test_unknown_method_names_choices(tmp_path):
    code, _, err = invoke("train", "betavae", "--data", "digits")
    assert code == 2 and "choose from" in err and "beta_vae" in err


def test_bad_config_file(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("model:\n  beta: -3\n")
    code, _, err = invoke("train", "beta_vae", "--data", "digits", "-c", f)
    assert code == 2 and "model.beta: must be >= 0" in err


def test_resume_through_the_cli(tmp_path):
    run = tmp_path / "run"
    code, _, err = invoke(
        "train", "vae", "--data", "digits", "--steps", 4, "--out", run, "-q", *FAST
    )
    assert code == 0, err
    code, _, err = invoke("train", "vae", "--data", "digits", "--out", run, "-q")
    assert code == 2 and "already exists" in err
    code, _, err = invoke("train", "vae", "--out", run, "--resume", "--steps", 6, "-q")
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert steps == [2, 4, 6]
    code, _, err = invoke("train", "vae", "--out", run, "--resume", "beta=3")
    assert code == 2 and "only train.* settings" in err
    code, _, err = invoke("train", "beta_vae", "--out", run, "--resume")
    assert code == 2 and "is a vae run" in err


def test_embed_writes_features(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "vae", "--data", "digits", "--steps", 2, "--out", run, "-q")[0] == 0
    code, out, err = invoke("embed", run, "--data", "digits", "--out", tmp_path / "z.npy")
    assert code == 0, err
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (1797, 10) and np.isfinite(z).all()
    code, _, err = invoke("embed", run, "--data", "digits", "--out", tmp_path / "z.txt")
    assert code == 2 and ".npy" in err
    code, _, err = invoke(
        "embed", tmp_path / "nothing", "--data", "digits", "--out", tmp_path / "y.npy"
    )
    assert code == 2 and "not a run directory" in err
    assert not (tmp_path / "y.npy").exists()


def test_bench_runs_benchmarks_that_import_a_shared_helper(tmp_path):
    (tmp_path / "_helper.py").write_text("def answer():\n    return 42\n")
    (tmp_path / "bench_tiny.py").write_text(
        "from _helper import answer\n\n\ndef main(argv):\n    return {'answer': answer()}\n"
    )
    code, _, err = invoke("bench", "--dir", tmp_path, "--json", tmp_path / "out.json")
    assert code == 0, err
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["results"] == {"tiny": {"answer": 42}}
    assert {"date", "cpu", "cores", "torch", "threads"} <= set(written["machine"])
    assert str(tmp_path) not in sys.path  # the folder is not left on the path


def test_bench_refuses_a_folder_without_benchmarks(tmp_path):
    code, _, err = invoke("bench", "--dir", tmp_path)
    assert code == 2 and "no bench_*.py" in err
