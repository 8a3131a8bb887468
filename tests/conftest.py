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
