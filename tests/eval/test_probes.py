import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from replab.eval.probes import (
    DEFAULT_L2,
    L2_GRID,
    clustering_scores,
    factor_probes,
    fit_logistic,
    knn_accuracy,
    linear_probe,
)


@pytest.fixture(scope="module")
def digits_split():
    """Fixed deterministic split of sklearn's digits: 360 test, 1437 train."""
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(x))
    te, tr = perm[:360], perm[360:]
    return x[tr], y[tr], x[te], y[te]


def _blobs(n_per_class, n_classes, dim, spread, rng):
    centres = rng.standard_normal((n_classes, dim)) * 10
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.standard_normal((len(y), dim))
    return x.astype(np.float32), y


# ------------------------------------------------------------------------ linear probe


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_logistic_matches_sklearn(digits_split, C):
    xtr, ytr, xte, yte = digits_split
    scaler = StandardScaler().fit(xtr)
    xtr_s, xte_s = scaler.transform(xtr), scaler.transform(xte)
    ref = LogisticRegression(C=C, max_iter=5000, tol=1e-6).fit(xtr_s, ytr)
    coef, intercept = fit_logistic(xtr_s, ytr, l2=1.0 / (C * len(xtr)))
    ours = (xte_s @ coef.T + intercept).argmax(1)
    acc_ref = (ref.predict(xte_s) == yte).mean()
    acc_ours = (ours == yte).mean()
    assert abs(acc_ours - acc_ref) <= 0.006  # at most 2 of 360 test digits
    assert np.mean(ours == ref.predict(xte_s)) >= 0.99
    assert np.abs(coef - ref.coef_).max() < 0.05 * np.abs(ref.coef_).max()


def test_wide_features_fit_in_their_row_space():
    """d > n (few labels, wide codes): the probe fits in an orthonormal basis of the
    standardised features' row space. It reaches sklearn's optimum on all d features at the
    strength it chose: the same penalised log-loss and the same test predictions."""
    from replab.eval.probes import _fit_standardised

    # 30 training examples of 400 features, classes overlapping (the chosen lam is 1e-3)
    x_all, y_all = _blobs(30, 3, 400, 150.0, np.random.default_rng(0))
    train = np.arange(len(x_all)) % 3 == 0
    x, y, x_test = x_all[train], y_all[train], x_all[~train]
    W, b, lam = _fit_standardised(
        torch.as_tensor(x), torch.as_tensor(y), 3, np.random.default_rng(0)
    )
    W, b = W.numpy().astype(np.float64), b.numpy().astype(np.float64)
    scaler = StandardScaler().fit(x)
    ref = LogisticRegression(C=1.0 / (lam * len(x)), max_iter=20000, tol=1e-10)
    ref.fit(scaler.transform(x), y)

    def penalised_loss(logits, w_standardised):
        lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        ce = np.mean(lse - logits[np.arange(len(y)), y])
        return ce + 0.5 * lam * np.sum(w_standardised**2)

    ours = penalised_loss(x @ W + b, W * scaler.scale_[:, None])
    theirs = penalised_loss(ref.decision_function(scaler.transform(x)), ref.coef_)
    assert ours <= theirs * (1 + 1e-3) + 1e-7
    pred = (x_test @ W + b).argmax(1)
    assert np.mean(pred == ref.predict(scaler.transform(x_test))) >= 0.95


def test_raw_pixel_probe_on_digits(digits_split):
    res = linear_probe(*digits_split, fractions=(1.0,), seeds=(0,))
    assert set(res) == {"1.0"}
    assert res["1.0"]["n_labels"] == 1437
    assert res["1.0"]["l2"][0] in L2_GRID
    assert 0.94 <= res["1.0"]["mean"] <= 0.99  # a plain logistic regression: ~95-97%


def test_linear_probe_fractions_and_reproducibility():
    rng = np.random.default_rng(0)
    x, y = _blobs(60, 4, 8, spread=8.0, rng=rng)
    perm = rng.permutation(len(y))
    tr, te = perm[:180], perm[180:]
    kw = dict(fractions=(0.02, 0.2, 1.0), seeds=(0, 1))
    a = linear_probe(x[tr], y[tr], x[te], y[te], **kw)
    b = linear_probe(x[tr], y[tr], x[te], y[te], fractions=(0.2,), seeds=(0, 1))
    # same seed -> identical numbers, whatever else is computed in the same call
    assert b["0.2"] == a["0.2"]
    assert list(a) == ["0.02", "0.2", "1.0"]
    for r in a.values():
        assert set(r) >= {"mean", "std", "scores"}
        assert len(r["scores"]) == 2
        assert r["mean"] == pytest.approx(np.mean(r["scores"]))
        assert r["std"] == pytest.approx(np.std(r["scores"]))
        assert all(0.0 <= s <= 1.0 for s in r["scores"])
    # 0.02 of 45 per class rounds to 1 per class: stratified, at least one each.
    assert a["0.02"]["n_labels"] == 4
    assert a["1.0"]["n_labels"] == 180
    assert a["1.0"]["mean"] > 0.8
    assert a["1.0"]["mean"] >= a["0.02"]["mean"] - 0.05


def test_linear_probe_tiny_subset_uses_default():
    rng = np.random.default_rng(1)
    x, y = _blobs(20, 2, 5, spread=1.0, rng=rng)
    res = linear_probe(x, y, x, y, fractions=(0.01,), seeds=(0,))
    assert res["0.01"]["n_labels"] == 2  # one per class: too few to select lam
    assert res["0.01"]["l2"] == [DEFAULT_L2]
    assert res["0.01"]["mean"] > 0.9  # well separated blobs


def test_linear_probe_arbitrary_labels_and_unseen_test_class():
    rng = np.random.default_rng(2)
    x, y = _blobs(30, 3, 4, spread=0.5, rng=rng)
    labels = np.array([7, -3, 100])[y]
    test_labels = labels.copy()
    test_labels[:10] = 55  # never seen in training: always wrong
    res = linear_probe(x, labels, x, test_labels, fractions=(1.0,), seeds=(0,))
    assert res["1.0"]["mean"] == pytest.approx(80 / 90)


# --------------------------------------------------------------------------------- k-NN


def _knn_brute(xtr, ytr, xte, yte, k, t):
    xtr = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    xte = xte / np.linalg.norm(xte, axis=1, keepdims=True)
    classes = np.unique(ytr)
    correct = 0
    for q, label in zip(xte, yte, strict=True):
        sim = xtr @ q
        nn = np.argsort(-sim)[:k]
        votes = [np.exp(sim[nn][ytr[nn] == c] / t).sum() for c in classes]
        correct += classes[int(np.argmax(votes))] == label
    return correct / len(yte)


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = _blobs(40, 5, 6, spread=12.0, rng=rng)  # overlapping classes
    perm = rng.permutation(len(y))
    tr, te = perm[:150], perm[150:]
    for k, t in [(1, 0.07), (5, 0.07), (20, 0.5)]:
        expect = _knn_brute(x[tr], y[tr], x[te], y[te], k, t)
        got = knn_accuracy(x[tr], y[tr], x[te], y[te], k=k, temperature=t)
        assert got == pytest.approx(expect)
        # tiny chunks give the same answer
        small = knn_accuracy(x[tr], y[tr], x[te], y[te], k=k, temperature=t, max_chunk_elements=300)
        assert small == got
    assert 0.2 < got < 1.0


def test_knn_separated_and_k_larger_than_train():
    rng = np.random.default_rng(3)
    x, y = _blobs(10, 3, 4, spread=0.1, rng=rng)
    assert knn_accuracy(x, y, x, y, k=200) == 1.0


# ---------------------------------------------------------------------------- k-means


def test_clustering_scores():
    rng = np.random.default_rng(0)
    x, y = _blobs(50, 4, 6, spread=0.5, rng=rng)
    good = clustering_scores(x, y, seed=0)
    assert good["nmi"] > 0.99 and good["ari"] > 0.99
    noise = clustering_scores(rng.standard_normal((200, 6)), y, seed=0)
    assert abs(noise["ari"]) < 0.05 and noise["nmi"] < 0.1
    assert clustering_scores(x, y, seed=0) == good


# ---------------------------------------------------------------------- factor probes


def test_factor_probes():
    rng = np.random.default_rng(0)
    n = 1200
    factors = np.stack(
        [
            rng.integers(0, 3, n),  # shape (categorical), present
            rng.integers(0, 10, n),  # position (ordinal), present
            rng.integers(0, 6, n),  # orientation (ordinal), absent
            rng.integers(0, 4, n),  # colour (categorical), absent
            np.zeros(n, dtype=int),  # a factor with one value
        ],
        axis=1,
    )
    noise = rng.standard_normal((n, 6))
    feats = np.concatenate([factors[:, :2].astype(float), noise], axis=1)
    names = ["shape", "position", "orientation", "colour", "constant"]
    with pytest.warns(RuntimeWarning, match="constant"):
        res = factor_probes(
            feats[:900],
            factors[:900],
            feats[900:],
            factors[900:],
            names,
            categorical={"shape", "colour"},
        )
    assert res["shape"]["kind"] == "accuracy" and res["shape"]["score"] > 0.98
    assert res["position"]["kind"] == "r2" and res["position"]["score"] > 0.99
    assert res["orientation"]["kind"] == "r2" and abs(res["orientation"]["score"]) < 0.05
    assert res["colour"]["kind"] == "accuracy" and res["colour"]["score"] < 0.25 + 0.1
    assert np.isnan(res["constant"]["score"])


def test_factor_probes_rejects_unknown_categorical():
    x = np.zeros((4, 2))
    f = np.zeros((4, 1), dtype=int)
    with pytest.raises(ValueError, match="categorical"):
        factor_probes(x, f, x, f, ["a"], categorical={"b"})
