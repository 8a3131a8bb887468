"""replab export: the encoder alone, run where replab cannot be imported, gives encode's codes."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.data import make_dataset
from replab.methods import configure
from replab.run import load
from replab.run.export import example_inputs
from replab.training.loop import train

# TorchScript's own imports warn of its deprecation on this torch
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# In the child, replab is unimportable: the encoder file must stand alone.
CHILD = textwrap.dedent(
    """
    import sys
    sys.modules["replab"] = None
    try:
        import replab
    except ImportError:
        pass
    else:
        raise SystemExit("replab was importable")
    import numpy as np, torch
    fmt, model_file, inputs, outputs = sys.argv[1:]
    x = np.load(inputs)
    if fmt == "torchscript":
        codes = torch.jit.load(model_file)(torch.from_numpy(x)).detach().numpy()
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
        codes = session.run(None, {"x": x})[0]
    np.save(outputs, codes)
    """
)


def trained(tmp_path, method, data, **overrides):
    cfg = configure(method, data, overrides={"train.steps": 1, "train.batch_size": 4, **overrides})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, make_dataset(data), tmp_path / method, progress=False)
    return tmp_path / method


def codes_without_replab(tmp_path, fmt, model_file, x):
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    subprocess.run(
        [sys.executable, str(script), fmt, str(model_file), str(tmp_path / "x.npy"),
         str(tmp_path / "codes.npy")],
        check=True, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    return torch.from_numpy(np.load(tmp_path / "codes.npy"))


@pytest.mark.parametrize(
    "method, data, batch_note",
    [
        ("vae", "digits", "; any batch size\n"),
        ("word2vec", "bilingual_b", "; any batch size\n"),  # int64 token ids in
        ("jigsaw", "sprites", "encoded one example at a time"),  # patch grids size by batch
    ],
)
def test_the_torchscript_encoder_gives_encodes_codes_without_replab(
    tmp_path, method, data, batch_note
):
    run_dir = trained(tmp_path, method, data)
    r = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "enc")])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "enc" / "encoder.pt")
    run = load(run_dir, device="cpu")
    x = example_inputs(run.model.info, 7, seed=5)  # a batch size it was not traced with
    got = codes_without_replab(tmp_path, "torchscript", tmp_path / "enc" / "encoder.pt", x)
    with torch.no_grad():
        expected = torch.cat([run.model.encode(x[i : i + 1]) for i in range(7)])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    readme = (tmp_path / "enc" / "README.md").read_text()
    assert batch_note in readme and f"shape [batch, {expected.shape[1]}]" in readme
    assert f"shape [batch, {', '.join(map(str, run.model.info.shape))}]" in readme


def test_the_onnx_encoder_gives_encodes_codes_in_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxruntime)")
    run_dir = trained(tmp_path, "vae", "digits")
    r = CliRunner().invoke(
        app, ["export", str(run_dir), "--out", str(tmp_path / "enc"), "--format", "onnx"]
    )
    assert r.exit_code == 0, r.stderr
    run = load(run_dir, device="cpu")
    x = example_inputs(run.model.info, 7, seed=5)
    got = codes_without_replab(tmp_path, "onnx", tmp_path / "enc" / "encoder.onnx", x)
    with torch.no_grad():
        torch.testing.assert_close(got, run.model.encode(x), rtol=0, atol=1e-5)


def test_bad_exports_are_refused_in_one_line_and_write_nothing(tmp_path):
    gan = trained(tmp_path, "gan", "digits")
    vae = trained(tmp_path, "vae", "digits")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    runner = CliRunner()
    for args, message in [
        ([str(gan), "--out", str(tmp_path / "e1")], "gan has no encoder to export"),
        ([str(vae), "--out", str(tmp_path / "e2"), "--format", "pickle"],
         "--format must be one of torchscript, onnx, got 'pickle'"),
        ([str(vae), "--out", str(tmp_path / "taken")], "exists; choose a new folder"),
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "e3")], "not a run directory"),
    ]:  # fmt: skip
        r = runner.invoke(app, ["export", *args])
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not any((tmp_path / name).exists() for name in ("e1", "e2", "e3"))
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half export
