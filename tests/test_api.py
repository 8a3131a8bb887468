"""The Python API: a practitioner's own arrays in, a trained run, its evaluation and encoder out."""

import numpy as np
import pytest
import torch

import replab
from replab.data import ArrayDataset
from replab.eval.protocol import SUITES


def test_train_evaluate_and_load_on_arrays_built_in_python(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(120, 1, 8, 8), dtype=np.uint8)
    y = (x.reshape(120, -1).mean(1) > 127).astype(int)
    mine = ArrayDataset(x, y, name="mine")
    run = replab.train("vae", mine, out=tmp_path / "run", steps=3, latent_dim=4)
    assert run.config.data == "mine" and run.config.model.latent_dim == 4
    small = SUITES["quick"].only(("linear_probe", "knn"))
    result = replab.evaluate(run, mine, suite=small)
    assert result.dataset == "mine" and set(result.parts) == {"linear_probe", "knn"}
    assert (tmp_path / "run" / "eval.json").is_file()
    loaded = replab.load(tmp_path / "run", device="cpu")  # no data needed, nor its spec
    codes = loaded.encode(torch.rand(5, 1, 8, 8))
    assert codes.shape == (5, 4)


def test_a_spec_is_built_once_and_checked(tmp_path):
    run = replab.train("vae", "digits", out=tmp_path / "run", steps=2, train__log_every=1)
    assert run.config.data == "digits" and run.config.train.log_every == 1
    with pytest.raises(ValueError, match="unknown data set"):
        replab.train("vae", "nope", out=tmp_path / "other", steps=2)
    assert not (tmp_path / "other").exists()
