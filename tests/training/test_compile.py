"""train.compile: a compiled step is the eager step up to float rounding."""

import pytest
import torch

from replab.data import make_dataset
from replab.methods import configure
from replab.run import build_model
from replab.training.loop import train

# Inductor's own imports raise DeprecationWarnings (torch.jit.script_method) on this torch
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FEW = {"train.steps": 2, "train.batch_size": 8, "train.log_every": 1}


def compiled_and_eager(tmp_path, monkeypatch, device: str, mode: str):
    import torch._inductor.config as inductor_config

    # Inductor draws the reparameterisation noise from its own generator unless told to fall
    # back to eager's: with it, both runs see the same noise and differ only by rounding
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    runs = []
    for name, compile_mode in (("eager", "off"), ("compiled", mode)):
        overrides = FEW | {"train.device": device, "train.compile": compile_mode}
        cfg = configure("vae", "digits", overrides=overrides)
        runs.append(train(cfg, make_dataset("digits"), tmp_path / name, progress=False))
    torch._dynamo.reset()
    return runs


def assert_close_runs(eager, compiled, tmp_path):
    a, b = eager.model.state_dict(), compiled.model.state_dict()
    assert a.keys() == b.keys()  # the saved weights are the module's own, not _orig_mod's
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    torch.manual_seed(eager.config.train.seed)  # the weights both runs started from
    start = build_model(eager.config, eager.model.info).state_dict()
    # two Adam steps at lr 1e-4 move weights by up to 2e-4, twenty times the tolerance
    assert max(float((a[k] - start[k]).abs().max()) for k in a) > 1e-4
    logs = [
        (tmp_path / n / "metrics.jsonl").read_text().splitlines() for n in ("eager", "compiled")
    ]
    assert len(logs[0]) == len(logs[1]) == 2


def test_a_compiled_run_matches_the_eager_one_within_rounding(tmp_path, monkeypatch):
    eager, compiled = compiled_and_eager(tmp_path, monkeypatch, "cpu", "default")
    assert_close_runs(eager, compiled, tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need CUDA")
def test_cuda_graph_replay_matches_the_eager_run_within_rounding(tmp_path, monkeypatch):
    eager, compiled = compiled_and_eager(tmp_path, monkeypatch, "cuda", "reduce-overhead")
    assert_close_runs(eager, compiled, tmp_path)
