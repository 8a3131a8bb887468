import os

import pytest
import torch

# Two cores: one thread per test process keeps timings steady and avoids oversubscription.
torch.set_num_threads(int(os.environ.get("REPLAB_TEST_THREADS", "1")))


@pytest.fixture
def tiny_overrides():
    """A few fast steps with logging and checkpoints on every other step."""
    return {"train.steps": 6, "train.log_every": 2, "train.checkpoint_every": 2}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's ~/.cache/replab."""
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path_factory.mktemp("replab-cache")))


@pytest.fixture
def resume_is_exact(tmp_path):
    """``check(cfg, stop)``: train ``cfg`` straight through (tmp_path/a) and stopped after
    ``stop`` steps then resumed (tmp_path/b); assert the stopped session wrote no final model
    and every weight is equal bit for bit; return (straight, resumed) runs for further checks."""
    from replab.data import make_dataset
    from replab.training.loop import train

    def check(cfg, stop: int):
        straight = train(cfg, make_dataset(cfg.data), tmp_path / "a", progress=False)
        train(cfg, make_dataset(cfg.data), tmp_path / "b", stop_after=stop, progress=False)
        if stop < cfg.train.steps:  # a stopped session leaves checkpoints, not a final model
            assert not (tmp_path / "b" / "model.safetensors").exists()
        resumed = train(cfg, make_dataset(cfg.data), tmp_path / "b", resume=True, progress=False)
        a, b = straight.model.state_dict(), resumed.model.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
        return straight, resumed

    return check
