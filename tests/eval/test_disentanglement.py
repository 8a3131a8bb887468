"""Disentanglement metrics: disentanglement_lib's reference values and known-answer checks."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from replab.eval import disentanglement as dis

# disentanglement_lib's own values on three fixed cases, carried here (see reference/README.md)
REF = Path(__file__).resolve().parent / "reference"
CASES = ("identity", "rotated", "random")
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def ref():
    """(arrays per case, expected values per case, tolerance) from the reference folder."""
    z = np.load(REF / "cases.npz")
    meta = json.loads((REF / "expected.json").read_text())
    keys = ("codes_train", "factors_train", "codes_test", "factors_test")
    arrays = {c: tuple(z[f"{c}__{k}"] for k in keys) for c in CASES}
    return arrays, meta["expected"], meta["tolerance"]


def _close(got, want, tol):
    assert got == pytest.approx(want, abs=tol), f"got {got}, disentanglement_lib gives {want}"


# ----------------------------------------------------------------------------------------------
# Reference values (disentanglement_lib on the shared cases)


@pytest.mark.parametrize("case", CASES)
def test_mig_reference(ref, case):
    arrays, expected, tol = ref
    _close(dis.mig(arrays[case][0], arrays[case][1]), expected[case]["mig"], tol["default"])


@pytest.mark.parametrize("case", CASES)
def test_modularity_reference(ref, case):
    arrays, expected, tol = ref
    codes, factors = arrays[case][:2]
    got = dis.modularity(dis.mutual_info_matrix(dis.discretize(codes), factors))
    _close(got, expected[case]["modularity"], tol["default"])


@pytest.mark.parametrize(
    "case", [pytest.param("identity", marks=slow), "rotated", "random"]
)  # identity: ~3.5 s of CPU, the 40-class SVMs converge slowly
def test_sap_reference(ref, case):
    arrays, expected, tol = ref
    _close(dis.sap(*arrays[case]), expected[case]["sap"], tol["default"])


@pytest.mark.parametrize(
    "case", [pytest.param("identity", marks=slow), pytest.param("rotated", marks=slow), "random"]
)
def test_modularity_explicitness_reference(ref, case):
    arrays, expected, tol = ref
    got = dis.modularity_explicitness(*arrays[case])
    for key in ("modularity", "explicitness_train", "explicitness_test"):
        _close(got[key], expected[case][key], tol["default"])


@slow
@pytest.mark.parametrize("case", CASES)
def test_dci_reference(ref, case):
    """The full check: about 11,000 boosted trees per case, many minutes on 2 cores."""
    arrays, expected, tol = ref
    got = dis.dci(*arrays[case])
    for key, value in got.items():
        _close(value, expected[case][f"dci_{key}"], tol["dci_*"])


def test_dci_reference_subsample(ref):
    """Fast stand-in for the full DCI check: the identity case on 1,000 training points and
    its two small factors (3 and 6 values). Disentanglement, completeness and informativeness
    keep the reference's values (1, 1, 1), which do not depend on the sample size."""
    arrays, expected, tol = ref
    c_tr, f_tr, c_te, f_te = arrays["identity"]
    got = dis.dci(c_tr[:1000], f_tr[:1000, :2], c_te[:1000], f_te[:1000, :2])
    for key, value in got.items():
        _close(value, expected["identity"][f"dci_{key}"], tol["dci_*"])


# ----------------------------------------------------------------------------------------------
# Known answers on synthetic codes

SIZES = [3, 6, 10, 8]


def _factors(n, seed=0, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1)


def _rotation(dim, seed=1):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def _rotated(codes, seed=1):
    z = (codes - codes.mean(0)) / codes.std(0)
    return z @ _rotation(codes.shape[1], seed)


def test_mig_known_answers():
    f = _factors(5000)
    # Enough bins to separate every value: the codes recover each factor exactly.
    assert dis.mig(f.astype(float), f, num_bins=64) > 0.97
    # 20 bins merge none of these values either (at most 10 per factor).
    identity = dis.mig(f.astype(float), f)
    assert identity > 0.97
    assert dis.mig(_rotated(f.astype(float)), f) < 0.5 * identity
    noise = np.random.default_rng(2).normal(size=(5000, 6))
    assert dis.mig(noise, f) < 0.05


def test_mutual_info_matches_sklearn():
    from sklearn.metrics import mutual_info_score

    f = _factors(2000, seed=3)
    codes = f[:, :3] + np.random.default_rng(4).normal(scale=2.0, size=(2000, 3))
    binned = dis.discretize(codes)
    assert binned.min() == 0 and binned.max() == dis.NUM_BINS - 1
    m = dis.mutual_info_matrix(binned, f)
    want = [[mutual_info_score(f[:, j], binned[:, i]) for j in range(4)] for i in range(3)]
    np.testing.assert_allclose(m, want, atol=1e-12)


def test_sap_and_modularity_known_answers():
    f_tr, f_te = _factors(3000, seed=5), _factors(1000, seed=6)
    c_tr, c_te = f_tr.astype(float), f_te.astype(float)
    identity = dis.sap(c_tr, f_tr, c_te, f_te)
    assert identity > 0.3
    assert dis.sap(_rotated(c_tr), f_tr, _rotated(c_te), f_te) < identity
    noise = np.random.default_rng(7)
    assert (
        abs(dis.sap(noise.normal(size=(3000, 4)), f_tr, noise.normal(size=(1000, 4)), f_te)) < 0.05
    )
    me = dis.modularity_explicitness(c_tr, f_tr, c_te, f_te)
    assert me["modularity"] > 0.99
    assert me["explicitness_test"] > 0.9
    rot = dis.modularity_explicitness(_rotated(c_tr), f_tr, _rotated(c_te), f_te)
    assert rot["modularity"] < me["modularity"] - 0.1


def test_dci_from_importance_known_answers():
    assert dis.dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dis.dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-9)
    # One latent carries both factors: perfectly complete, not disentangled.
    assert dis.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(
        (0.0, 1.0), abs=1e-9
    )
    # An all-zero matrix (no latent is used) scores 0, as in disentanglement_lib.
    assert dis.dci_from_importance(np.zeros((2, 2))) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_dci_known_answers():
    sizes = [2, 3]  # few classes: few trees (one per class and boosting stage)
    f_tr, f_te = _factors(400, seed=8, sizes=sizes), _factors(200, seed=9, sizes=sizes)
    c_tr, c_te = f_tr.astype(float), f_te.astype(float)
    rng = np.random.default_rng(0)
    identity = dis.dci(c_tr, f_tr, c_te, f_te, rng=rng)
    assert identity["disentanglement"] > 0.95 and identity["completeness"] > 0.95
    assert identity["informativeness_test"] == 1.0
    rot = dis.dci(_rotated(c_tr), f_tr, _rotated(c_te), f_te, rng=rng)
    assert rot["disentanglement"] < identity["disentanglement"] - 0.2
    noise = np.random.default_rng(10)
    rand = dis.dci(noise.normal(size=(400, 2)), f_tr, noise.normal(size=(200, 2)), f_te, rng=rng)
    assert rand["disentanglement"] < 0.2
    assert rand["informativeness_test"] < 0.6  # chance: (1/2 + 1/3) / 2


# ----------------------------------------------------------------------------------------------
# BetaVAE and FactorVAE scores on a toy ground-truth data set whose observations are the factors


class ToyData:
    """disentanglement_lib's interface; each observation is its factor vector [F, 1, 1]."""

    def __init__(self, factor_sizes):
        self.factor_sizes = list(factor_sizes)
        self.calls: list[int] = []

    def sample_factors(self, n, rng):
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1)

    def observations(self, factors):
        self.calls.append(len(factors))
        return torch.as_tensor(factors, dtype=torch.float32)[:, :, None, None]


TOY_SIZES = [4, 5, 6, 7]
SMALL = {"batch_size": 16, "num_train": 400, "num_eval": 200}


def _identity(x):
    return x.flatten(1).numpy()


def _standardised(x):
    """The toy factors scaled to mean 0 and variance 1 (uniform on 0 .. s-1)."""
    sizes = np.asarray(TOY_SIZES, dtype=np.float64)
    return (x.flatten(1).numpy() - (sizes - 1) / 2) / np.sqrt((sizes**2 - 1) / 12)


def _rotating(x):
    return _standardised(x) @ _rotation(len(TOY_SIZES), seed=3)


def _mixing(x):
    """Factor pairs (0, 1) and (2, 3) turned by 45 degrees: every latent mixes two factors."""
    c = np.sqrt(0.5)
    q = np.array([[c, -c, 0, 0], [c, c, 0, 0], [0, 0, c, -c], [0, 0, c, c]])
    return _standardised(x) @ q


def _noise(seed=11):
    rng = np.random.default_rng(seed)
    return lambda x: rng.normal(size=(len(x), 4))


def test_beta_vae_score_known_answers():
    data = ToyData(TOY_SIZES)
    identity = dis.beta_vae_score(data, _identity, np.random.default_rng(0), **SMALL)
    assert identity > 0.95
    # A generic rotation costs little here (0.98): a linear classifier still reads the fixed
    # factor off |z1 - z2|. Mixing factor pairs at 45 degrees costs about half.
    rotated = dis.beta_vae_score(data, _rotating, np.random.default_rng(0), **SMALL)
    assert rotated < identity
    mixed = dis.beta_vae_score(data, _mixing, np.random.default_rng(0), **SMALL)
    assert mixed < 0.75
    chance = dis.beta_vae_score(data, _noise(), np.random.default_rng(0), **SMALL)
    assert abs(chance - 1 / len(TOY_SIZES)) < 0.12
    scores = dis.beta_vae_scores(data, _identity, np.random.default_rng(0), **SMALL)
    assert scores["eval_accuracy"] == identity  # same seed, same score
    assert scores["train_accuracy"] > 0.95


def test_factor_vae_score_known_answers():
    """A rotation lowers the FactorVAE score only where it makes factors share their
    least-varying latent: a generic rotation keeps a distinct dominant latent per factor and can
    score 1 (it does here). Turning factor pairs by 45 degrees ties the pairs: about 0.5."""
    data = ToyData(TOY_SIZES)
    kw = dict(SMALL, num_variance_estimate=1000)
    identity = dis.factor_vae_score(data, _identity, np.random.default_rng(0), **kw)
    assert identity > 0.95
    mixed = dis.factor_vae_score(data, _mixing, np.random.default_rng(0), **kw)
    assert mixed < 0.75
    chance = dis.factor_vae_score(data, _noise(), np.random.default_rng(0), **kw)
    assert abs(chance - 1 / len(TOY_SIZES)) < 0.12
    details = dis.factor_vae_scores(data, _identity, np.random.default_rng(0), **kw)
    assert details["eval_accuracy"] == identity
    assert details["num_active_dims"] == len(TOY_SIZES)


def test_scores_encode_in_large_chunks():
    """All batches are sampled up front and encoded up to 2,048 observations per call."""
    data = ToyData(TOY_SIZES)
    sizes = []

    def encode(x):
        sizes.append(len(x))
        return _identity(x)

    dis.beta_vae_score(
        data, encode, np.random.default_rng(0), batch_size=64, num_train=100, num_eval=50
    )
    # 150 points x 2 batches x 64 = 19,200 observations: 10 calls, not 300.
    assert sum(sizes) == 150 * 2 * 64 and len(sizes) <= 12 and max(sizes) <= dis.ENCODE_CHUNK
    sizes.clear()
    dis.factor_vae_score(
        data,
        encode,
        np.random.default_rng(0),
        batch_size=64,
        num_train=100,
        num_eval=50,
        num_variance_estimate=3000,
    )
    assert sum(sizes) == 3000 + 150 * 64 and len(sizes) <= 8 and max(sizes) <= dis.ENCODE_CHUNK


def test_pruned_latents_are_ignored():
    """A latent with standard deviation below 0.05 cannot win the FactorVAE argmin."""
    data = ToyData(TOY_SIZES)

    def encode(x):
        z = _identity(x)
        return np.concatenate([z, np.full((len(z), 1), 3.0) + 1e-3 * z[:, :1]], axis=1)

    details = dis.factor_vae_scores(
        data, encode, np.random.default_rng(0), num_variance_estimate=1000, **SMALL
    )
    assert details["num_active_dims"] == len(TOY_SIZES)
    assert details["eval_accuracy"] > 0.95


# ----------------------------------------------------------------------------------------------
# Undefined cases: NaN and a warning, never an exception


def _all_metrics(c_tr, f_tr, c_te, f_te, with_dci=True):
    """Every array metric as a flat dict."""
    out = {"mig": dis.mig(c_tr, f_tr), "sap": dis.sap(c_tr, f_tr, c_te, f_te)}
    out.update(dis.modularity_explicitness(c_tr, f_tr, c_te, f_te))
    if with_dci:  # undefined inputs return before any tree is fitted
        out.update({f"dci_{k}": v for k, v in dis.dci(c_tr, f_tr, c_te, f_te).items()})
    return out


@pytest.mark.parametrize(
    "what, match",
    [
        ("constant_codes", "constant"),
        ("one_valued_factor", "single value"),
        ("nan_codes", "NaN"),
    ],
)
def test_undefined_metrics_return_nan_with_warning(what, match):
    f_tr, f_te = _factors(200, seed=12), _factors(100, seed=13)
    c_tr, c_te = f_tr.astype(float), f_te.astype(float)
    if what == "constant_codes":
        c_tr, c_te = np.ones_like(c_tr), np.ones_like(c_te)
    elif what == "one_valued_factor":
        f_tr[:, 1] = 2
    else:
        c_tr[5, 0] = np.nan
    with pytest.warns(RuntimeWarning, match=match):
        values = _all_metrics(c_tr, f_tr, c_te, f_te)
    assert all(math.isnan(v) for v in values.values()), values


def test_too_few_latents_or_factors():
    f = _factors(200)
    with pytest.warns(RuntimeWarning, match="2 latents"):
        assert math.isnan(dis.mig(f[:, :1].astype(float), f))
    with pytest.warns(RuntimeWarning, match="2 latents"):
        assert math.isnan(dis.sap(f[:, :1].astype(float), f, f[:, :1].astype(float), f))
    with pytest.warns(RuntimeWarning, match="2 factors"):
        me = dis.modularity_explicitness(f.astype(float), f[:, :1], f.astype(float), f[:, :1])
    assert math.isnan(me["modularity"]) and me["explicitness_test"] > 0.9


def test_score_undefined_cases():
    kw = dict(SMALL, num_variance_estimate=500)
    with pytest.warns(RuntimeWarning, match="single value"):
        assert math.isnan(
            dis.beta_vae_score(ToyData([4, 1, 5]), _identity, np.random.default_rng(0), **SMALL)
        )
    with pytest.warns(RuntimeWarning, match="single value"):
        assert math.isnan(
            dis.factor_vae_score(ToyData([4, 1, 5]), _identity, np.random.default_rng(0), **kw)
        )

    def constant(x):
        return np.zeros((len(x), 3))

    data = ToyData(TOY_SIZES)
    with pytest.warns(RuntimeWarning, match="constant"):
        assert math.isnan(dis.beta_vae_score(data, constant, np.random.default_rng(0), **SMALL))
    with pytest.warns(RuntimeWarning, match="pruned"):
        assert math.isnan(dis.factor_vae_score(data, constant, np.random.default_rng(0), **kw))

    def tiny(x):  # every latent varies, but with standard deviation below 0.05
        return 1e-3 * _identity(x)

    with pytest.warns(RuntimeWarning, match="pruned"):
        assert math.isnan(dis.factor_vae_score(data, tiny, np.random.default_rng(0), **kw))


def test_one_constant_latent_is_not_an_error():
    """A single collapsed latent carries no information; the metrics stay defined."""
    f_tr, f_te = _factors(500, seed=14), _factors(200, seed=15)
    c_tr = np.concatenate([f_tr, np.zeros((500, 1))], axis=1).astype(float)
    c_te = np.concatenate([f_te, np.zeros((200, 1))], axis=1).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = _all_metrics(c_tr, f_tr, c_te, f_te, with_dci=False)  # DCI: 2,700 trees
    assert all(np.isfinite(v) for v in values.values()), values
    assert values["mig"] > 0.9 and values["explicitness_test"] > 0.9


def test_explicitness_with_a_class_missing_from_the_test_points():
    f_tr, f_te = _factors(500, seed=16), _factors(200, seed=17)
    f_te[:, 2] = np.where(f_te[:, 2] == 9, 0, f_te[:, 2])  # value 9 never appears in the test set
    with pytest.warns(RuntimeWarning, match="absent"):
        me = dis.modularity_explicitness(f_tr.astype(float), f_tr, f_te.astype(float), f_te)
    assert np.isfinite(me["explicitness_test"]) and me["explicitness_test"] > 0.9


def test_shape_errors_raise():
    f = _factors(100)
    with pytest.raises(ValueError, match="points"):
        dis.mig(f[:50].astype(float), f)
    with pytest.raises(ValueError, match="latents"):
        dis.sap(f.astype(float), f, f[:, :2].astype(float), f)
    with pytest.raises(ValueError, match="2-d"):
        dis.mig(f[:, 0].astype(float), f)
