import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group

from replab.data.base import DataInfo, GroundTruthDataset
from replab.eval.symmetry import symmetry_scores


class ToyFactors(GroundTruthDataset):
    """Observations are the factor indices themselves, as float [n, F]."""

    name = "toy-factors"
    label_factor = "a"

    def __init__(self, sizes=(4, 6, 8), names=("a", "b", "c")):
        self.factor_sizes = list(sizes)
        self.factor_names = list(names)
        self.info = DataInfo(shape=(len(sizes),))
        self.calls = []

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        self.calls.append(len(factors))
        return torch.as_tensor(np.asarray(factors), dtype=torch.float32)


def _rotation(dim, seed):
    return torch.as_tensor(special_ortho_group.rvs(dim, random_state=seed), dtype=torch.float32)


def test_identity_is_local_and_equivariant():
    data = ToyFactors()
    res = symmetry_scores(data, lambda x: x, np.random.default_rng(0), n_pairs=500)
    assert res["factors"] == ["a", "b", "c"]
    assert set(res["locality"]) == set(res["equivariance"]) == {"a", "b", "c", "mean"}
    assert len(res["response"]) == 3 and all(len(r) == 3 for r in res["response"])
    for f, name in enumerate(res["factors"]):
        row = np.array(res["response"][f])
        assert row.sum() == pytest.approx(1.0)
        assert row[f] == pytest.approx(1.0)  # only the factor's own latent responds
        assert res["locality"][name] == pytest.approx(1.0)
        assert res["equivariance"][name] > 0.999  # a translation is linear
    assert res["locality"]["mean"] == pytest.approx(1.0)
    assert res["equivariance"]["mean"] > 0.999
    # encoded in large chunks, not per pair: 500 base + 3 x 3 x 500 points, 2048 per call
    assert max(data.calls) == 2048 and len(data.calls) == 3


def test_rotation_is_less_local_but_still_equivariant():
    data = ToyFactors()
    q = _rotation(3, seed=0)
    res = symmetry_scores(data, lambda x: x @ q, np.random.default_rng(0), n_pairs=500)
    assert res["locality"]["mean"] < 0.8
    assert res["equivariance"]["mean"] > 0.999
    top2 = symmetry_scores(data, lambda x: x @ q, np.random.default_rng(0), n_pairs=500, top_k=2)
    assert top2["locality"]["mean"] > res["locality"]["mean"]
    full = symmetry_scores(data, lambda x: x @ q, np.random.default_rng(0), n_pairs=500, top_k=3)
    assert full["locality"]["mean"] == pytest.approx(1.0)


def test_nonlinear_encoding_is_less_equivariant():
    data = ToyFactors()
    q = _rotation(3, seed=1)
    res = symmetry_scores(
        data, lambda x: torch.sin(7.0 * x @ q), np.random.default_rng(0), n_pairs=500
    )
    assert res["equivariance"]["mean"] < 0.5
    # per-latent nonlinearity: still local, but the moved latent is unpredictable
    res = symmetry_scores(data, lambda x: torch.sin(7.0 * x), np.random.default_rng(0), n_pairs=500)
    assert res["locality"]["mean"] == pytest.approx(1.0)
    assert res["equivariance"]["mean"] < 0.9


def test_reproducible_and_numpy_encoder():
    data = ToyFactors()
    a = symmetry_scores(data, lambda x: x.numpy() * 2.0, 3, n_pairs=200)
    b = symmetry_scores(data, lambda x: x.numpy() * 2.0, np.random.default_rng(3), n_pairs=200)
    assert a == b


def test_single_valued_factor_gives_nan_not_crash():
    data = ToyFactors(sizes=(4, 1, 5), names=("a", "fixed", "c"))
    with pytest.warns(RuntimeWarning, match="fixed"):
        res = symmetry_scores(data, lambda x: x, np.random.default_rng(0), n_pairs=200)
    assert np.isnan(res["locality"]["fixed"]) and np.isnan(res["equivariance"]["fixed"])
    assert all(np.isnan(res["response"][1]))
    assert res["locality"]["mean"] == pytest.approx(1.0)  # NaNs are left out of the mean
    assert res["equivariance"]["mean"] > 0.999


def test_step_too_large_gives_nan():
    data = ToyFactors(sizes=(3, 8), names=("small", "big"))
    with pytest.warns(RuntimeWarning, match="small"):
        res = symmetry_scores(data, lambda x: x, np.random.default_rng(0), n_pairs=200, step=3)
    assert np.isnan(res["equivariance"]["small"])
    assert res["equivariance"]["big"] > 0.999
