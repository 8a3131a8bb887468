"""Disentanglement metrics with disentanglement_lib's definitions and defaults.

Codes are arrays (points, latents); factors are integer arrays (points, factors), both in the
(points, dims) layout (disentanglement_lib itself works on the transpose). Each metric follows
the reference implementation (google-research/disentanglement_lib) step for step, so that its
values can be compared with the published ones, but the computations are vectorised: one
``bincount`` per factor for all mutual informations, one rank transform per factor for all
ROC-AUCs, and the BetaVAE / FactorVAE scores sample all their batches up front and encode them in
large chunks.

Where a metric is undefined (all codes constant or non-finite, a factor with a single value, too
few latents or factors, every latent pruned) the function returns ``float("nan")`` and emits a
``warnings.warn`` that says why; it never raises on degenerate data. Shape errors (arrays that do
not fit together) still raise ``ValueError``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from replab.methods.capabilities import encoded_chunks, slices

NUM_BINS = 20  # disentanglement_lib's histogram discretiser for MIG and modularity
ENCODE_CHUNK = 2048  # observations per call of ``encode`` in the BetaVAE / FactorVAE scores
PRUNE_THRESHOLD = 0.05  # FactorVAE: latents whose standard deviation is below this are dropped
NAN = float("nan")

__all__ = [
    "beta_vae_score",
    "beta_vae_scores",
    "dci",
    "dci_from_importance",
    "discretize",
    "factor_vae_score",
    "factor_vae_scores",
    "mig",
    "modularity",
    "modularity_explicitness",
    "mutual_info_matrix",
    "sap",
]


# ----------------------------------------------------------------------------------------------
# Input checks


def _undefined(metric: str, reason: str) -> float:
    warnings.warn(f"{metric} is undefined: {reason}; returning NaN", RuntimeWarning, stacklevel=3)
    return NAN


def _codes(codes: Any, name: str) -> np.ndarray:
    c = np.asarray(codes, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (points, latents), got shape {c.shape}")
    return c


def _factors(factors: Any, name: str, n: int) -> np.ndarray:
    f = np.asarray(factors)
    if f.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (points, factors), got shape {f.shape}")
    if f.shape[0] != n:
        raise ValueError(f"{name} has {f.shape[0]} points but the codes have {n}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        if not np.all(np.equal(np.mod(f, 1), 0)):
            raise ValueError(f"{name} must hold integers (discrete factor values)")
        f = f.astype(np.int64)
    return f


def _check(
    metric: str,
    codes_train: Any,
    factors_train: Any,
    codes_test: Any = None,
    factors_test: Any = None,
    *,
    min_latents: int = 1,
    min_factors: int = 1,
) -> tuple[tuple[np.ndarray, ...], str | None]:
    """Convert and validate the arrays; return them and the reason the metric is undefined."""
    c_tr = _codes(codes_train, "codes_train" if codes_test is not None else "codes")
    f_tr = _factors(
        factors_train, "factors_train" if codes_test is not None else "factors", len(c_tr)
    )
    arrays: tuple[np.ndarray, ...] = (c_tr, f_tr)
    if codes_test is not None:
        c_te = _codes(codes_test, "codes_test")
        f_te = _factors(factors_test, "factors_test", len(c_te))
        if c_te.shape[1] != c_tr.shape[1]:
            raise ValueError(f"codes_test has {c_te.shape[1]} latents, codes_train {c_tr.shape[1]}")
        if f_te.shape[1] != f_tr.shape[1]:
            raise ValueError(
                f"factors_test has {f_te.shape[1]} factors, factors_train {f_tr.shape[1]}"
            )
        arrays = (c_tr, f_tr, c_te, f_te)
    reason = None
    d, k = c_tr.shape[1], f_tr.shape[1]
    if len(c_tr) < 2 or (codes_test is not None and len(arrays[2]) < 1):
        reason = "too few points"
    elif d < min_latents:
        reason = f"it needs at least {min_latents} latents, got {d}"
    elif k < min_factors:
        reason = f"it needs at least {min_factors} factors, got {k}"
    elif not all(np.isfinite(a).all() for a in arrays[::2]):
        reason = "the codes contain NaN or infinite values"
    elif np.all(c_tr == c_tr[:1]):
        reason = "every code is constant"
    else:
        one_valued = [j for j in range(k) if np.all(f_tr[:, j] == f_tr[0, j])]
        if one_valued:
            reason = f"factor(s) {one_valued} take a single value"
    return arrays, reason


@contextlib.contextmanager
def _sklearn_fits() -> Iterator[None]:
    """One BLAS thread and no ConvergenceWarning while the small sklearn models fit.

    The models here are tiny (a few latents): threads only add synchronisation, which costs more
    than the work on a busy machine. The reference keeps whatever the solvers return, so
    convergence warnings would only be noise in the reports.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# ----------------------------------------------------------------------------------------------
# Discretisation and mutual information


def discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Bin index (0 .. num_bins-1) of each code in ``num_bins`` equal-width bins over its range.

    As disentanglement_lib: ``numpy.histogram`` edges per latent, then ``numpy.digitize`` against
    all edges but the last (the maximum falls in the last bin; a constant latent in one bin).
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, i], bins=num_bins)
        out[:, i] = np.searchsorted(edges[:-1], codes[:, i], side="right") - 1
    return out


def _relabel(factors: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Each factor's values mapped to 0 .. K_j - 1, and the K_j."""
    labels = np.empty(factors.shape, dtype=np.int64)
    sizes = []
    for j in range(factors.shape[1]):
        uniq, inv = np.unique(factors[:, j], return_inverse=True)
        labels[:, j] = inv.reshape(-1)
        sizes.append(len(uniq))
    return labels, sizes


def _mi_from_counts(counts: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of joint count tables [..., A, B]: sum p_ab log(p_ab / p_a p_b)."""
    counts = counts.astype(np.float64)
    n = counts.sum(axis=(-2, -1), keepdims=True)
    row = counts.sum(axis=-1, keepdims=True)
    col = counts.sum(axis=-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = counts / n * (np.log(counts) + np.log(n) - np.log(row) - np.log(col))
    mi = np.where(counts > 0, terms, 0.0).sum(axis=(-2, -1))
    return np.clip(mi, 0.0, None)  # as sklearn's mutual_info_score


def mutual_info_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI (nats) of every (code, factor) pair, shape (latents, factors).

    Equals sklearn's ``mutual_info_score`` per pair, with one ``bincount`` per factor for all
    latents at once: the joint index is latent * (B * K) + bin * K + value.
    """
    codes = np.asarray(discrete_codes, dtype=np.int64)
    codes = codes - codes.min(axis=0, keepdims=True)
    n, d = codes.shape
    bins = int(codes.max()) + 1 if codes.size else 1
    labels, sizes = _relabel(np.asarray(factors))
    m = np.empty((d, len(sizes)))
    offset = np.arange(d, dtype=np.int64)[None, :] * bins
    for j, kj in enumerate(sizes):
        joint = (offset + codes) * kj + labels[:, j : j + 1]
        counts = np.bincount(joint.ravel(), minlength=d * bins * kj).reshape(d, bins, kj)
        m[:, j] = _mi_from_counts(counts)
    return m


def _entropies(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each factor, i.e. its mutual information with itself."""
    labels, sizes = _relabel(np.asarray(factors))
    h = np.empty(len(sizes))
    for j, kj in enumerate(sizes):
        p = np.bincount(labels[:, j], minlength=kj) / len(labels)
        p = p[p > 0]
        h[j] = -(p * np.log(p)).sum()
    return h


# ----------------------------------------------------------------------------------------------
# MIG


def mig(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = NUM_BINS) -> float:
    """Mutual information gap (Chen et al. 2018), disentanglement_lib's ``discrete_mig``.

    MIG = mean_k (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k), where z_(1), z_(2) are the latents with
    the largest and second-largest MI with factor v_k after a 20-bin histogram discretisation.
    Normalising the gap by H(v_k) puts it in [0, 1]; the gap (not the top MI alone) penalises a
    factor spread over several latents. 20 bins cannot separate factors with more values, so even
    perfect codes score below 1 on such factors.
    """
    (c, f), reason = _check("MIG", codes, factors, min_latents=2)
    if reason:
        return _undefined("MIG", reason)
    m = mutual_info_matrix(discretize(c, num_bins), f)
    top2 = -np.sort(-m, axis=0)[:2]
    return float(np.mean((top2[0] - top2[1]) / _entropies(f)))


# ----------------------------------------------------------------------------------------------
# DCI


def _seed(rng: np.random.Generator | None) -> int:
    return 0 if rng is None else int(rng.integers(2**31 - 1))


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness of an importance matrix R (latents, factors).

    D = sum_i rho_i (1 - H_F(P_i.)), rho_i = sum_k R_ik / sum R: each latent's importance
    distribution over the F factors should have low entropy (base F), weighted by how much the
    latent matters. C = sum_k rho_k (1 - H_d(P_.k)): each factor should be captured by few of the
    d latents. As disentanglement_lib, 1e-11 is added to R before normalising each row/column, and
    an all-zero R gets uniform weights. D is NaN with one factor, C with one latent (log base 1).
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = r.shape
    weights = r if r.sum() > 0 else np.ones_like(r)

    def one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:  # along axis 1
        p = p + 1e-11
        p = p / p.sum(axis=1, keepdims=True)
        return 1.0 - (-(p * np.log(p)).sum(axis=1) / np.log(base))

    code_share = weights.sum(axis=1) / weights.sum()
    factor_share = weights.sum(axis=0) / weights.sum()
    dis = NAN if k < 2 else float(np.sum(one_minus_entropy(r, k) * code_share))
    com = NAN if d < 2 else float(np.sum(one_minus_entropy(r.T, d) * factor_share))
    return dis, com


def _fit_gbt(x_tr, y_tr, x_te, y_te, seed):
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(random_state=seed).fit(x_tr, y_tr)
    return (
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(x_tr) == y_tr)),
        float(np.mean(model.predict(x_te) == y_te)),
    )


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    n_jobs: int = 1,
) -> dict[str, float]:
    """Disentanglement, completeness, informativeness (Eastwood & Williams 2018).

    Per factor a default ``GradientBoostingClassifier`` is fitted on all codes; its absolute
    feature importances form the column of R (latents x factors). Disentanglement and
    completeness follow from R (see ``dci_from_importance``); informativeness is the classifiers'
    mean accuracy on the training and test points. ``rng`` seeds the trees (a fixed seed when
    None); ``n_jobs`` fits the factors' classifiers in parallel threads. Slow: about 100 trees per
    class of every factor, minutes for 10,000 points on dSprites' 113 classes.
    """
    keys = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
    (c_tr, f_tr, c_te, f_te), reason = _check(
        "DCI", codes_train, factors_train, codes_test, factors_test
    )
    if reason:
        _undefined("DCI", reason)
        return dict.fromkeys(keys, NAN)
    seeds = [_seed(rng) for _ in range(f_tr.shape[1])] if rng is not None else None
    jobs = [
        (c_tr, f_tr[:, j], c_te, f_te[:, j], 0 if seeds is None else seeds[j])
        for j in range(f_tr.shape[1])
    ]
    with _sklearn_fits():
        if n_jobs == 1:
            fits = [_fit_gbt(*job) for job in jobs]
        else:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=n_jobs, prefer="threads")
            fits = parallel(delayed(_fit_gbt)(*job) for job in jobs)
    importance = np.stack([fit[0] for fit in fits], axis=1)
    if importance.shape[0] < 2:
        _undefined("DCI completeness", "it needs at least 2 latents")
    if importance.shape[1] < 2:
        _undefined("DCI disentanglement", "it needs at least 2 factors")
    dis, com = dci_from_importance(importance)
    return {
        "disentanglement": dis,
        "completeness": com,
        "informativeness_train": float(np.mean([fit[1] for fit in fits])),
        "informativeness_test": float(np.mean([fit[2] for fit in fits])),
    }


# ----------------------------------------------------------------------------------------------
# SAP


def sap(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
) -> float:
    """Separated attribute predictability (Kumar et al. 2018), discrete factors.

    S_ik = test accuracy of a one-dimensional ``LinearSVC(C=0.01, class_weight="balanced")``
    predicting factor k from latent i alone; SAP = mean_k (top S_.k - second S_.k). A large gap
    means each factor is predictable from one latent only. ``rng`` seeds the SVMs (the primal
    solver sklearn picks for one feature is deterministic anyway).
    """
    from sklearn.svm import LinearSVC

    (c_tr, f_tr, c_te, f_te), reason = _check(
        "SAP", codes_train, factors_train, codes_test, factors_test, min_latents=2
    )
    if reason:
        return _undefined("SAP", reason)
    d, k = c_tr.shape[1], f_tr.shape[1]
    score = np.empty((d, k))
    seed = _seed(rng)
    with _sklearn_fits():
        for i in range(d):
            for j in range(k):
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                svm.fit(c_tr[:, i : i + 1], f_tr[:, j])
                score[i, j] = np.mean(svm.predict(c_te[:, i : i + 1]) == f_te[:, j])
    top2 = -np.sort(-score, axis=0)[:2]
    return float(np.mean(top2[0] - top2[1]))


# ----------------------------------------------------------------------------------------------
# Modularity and explicitness


def modularity(mi: np.ndarray) -> float:
    """Modularity (Ridgeway & Mozer 2018) of an MI matrix (latents, factors).

    Per latent i with largest squared MI m_i = max_k MI_ik^2:
    1 - (sum_k MI_ik^2 - m_i) / (m_i (F - 1)), i.e. 1 when the latent informs about one factor
    only; a latent with no information (m_i = 0) scores 0. Averaged over latents.
    """
    sq = np.square(np.asarray(mi, dtype=np.float64))
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1.0))
    per_code[top == 0.0] = 0.0
    return float(np.mean(per_code))


def _auc_columns(onehot: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of every column (Mann-Whitney U with average ranks for ties); NaN if undefined."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=0)
    pos = onehot.sum(axis=0)
    neg = len(onehot) - pos
    u = (ranks * onehot).sum(axis=0) - pos * (pos + 1) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan)


def modularity_explicitness(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    num_bins: int = NUM_BINS,
) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib.

    Modularity: ``modularity`` of the 20-bin MI matrix of the training codes. Explicitness: codes
    standardised with the training mean and std; per factor a default ``LogisticRegression`` on
    all codes; the score is the macro ROC-AUC of its class probabilities against the one-hot
    factor (train and test), averaged over factors: how linearly decodable each factor is. A
    constant latent is standardised to 0 (the reference would divide by 0); a class missing from
    the evaluated points is left out of the average (the reference would fail).
    """
    from sklearn.linear_model import LogisticRegression

    keys = ("modularity", "explicitness_train", "explicitness_test")
    (c_tr, f_tr, c_te, f_te), reason = _check(
        "modularity/explicitness", codes_train, factors_train, codes_test, factors_test
    )
    if reason:
        _undefined("modularity/explicitness", reason)
        return dict.fromkeys(keys, NAN)
    k = f_tr.shape[1]
    if k < 2:
        mod = _undefined("modularity", "it needs at least 2 factors")
    else:
        mod = modularity(mutual_info_matrix(discretize(c_tr, num_bins), f_tr))

    mean, std = c_tr.mean(axis=0), c_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_tr, x_te = (c_tr - mean) / std, (c_te - mean) / std
    auc_tr, auc_te = np.empty(k), np.empty(k)
    dropped = False
    for j in range(k):
        with _sklearn_fits():
            clf = LogisticRegression().fit(x_tr, f_tr[:, j])
            probs = clf.predict_proba(x_tr), clf.predict_proba(x_te)
        for p, y, out in zip(probs, (f_tr[:, j], f_te[:, j]), (auc_tr, auc_te), strict=True):
            onehot = (y[:, None] == clf.classes_[None, :]).astype(np.float64)
            auc = _auc_columns(onehot, p)
            dropped |= bool(np.isnan(auc).any())
            out[j] = np.nanmean(auc) if not np.isnan(auc).all() else np.nan
    if dropped:
        warnings.warn(
            "explicitness: some factor values are absent from the train or test points; "
            "their ROC-AUC is left out of the average",
            RuntimeWarning,
            stacklevel=2,
        )
    return {
        "modularity": mod,
        "explicitness_train": float(np.mean(auc_tr)),
        "explicitness_test": float(np.mean(auc_te)),
    }


# ----------------------------------------------------------------------------------------------
# BetaVAE and FactorVAE scores (they sample from the data and encode)


def _encode_batches(
    data: Any,
    encode: Callable[[torch.Tensor], Any],
    factors: np.ndarray,
    reduce: Callable[[np.ndarray], np.ndarray],
    chunk_size: int,
) -> np.ndarray:
    """``reduce`` applied to the codes of each group of factors [groups, m, F].

    Groups are encoded together, ``chunk_size // m`` groups (at least one) per ``encode`` call;
    ``reduce`` maps codes [g, m, d] to one row per group.
    """
    groups, m, f = factors.shape
    parts = list(slices(factors, max(1, chunk_size // m)))
    inputs = (data.observations(part.reshape(-1, f)) for part in parts)
    codes = encoded_chunks(encode, inputs, np.float64)
    return np.concatenate(
        [reduce(z.reshape(len(p), m, -1)) for p, z in zip(parts, codes, strict=True)]
    )


def _score_inputs_reason(data: Any, batch_size: int, min_batch: int) -> str | None:
    sizes = [int(s) for s in data.factor_sizes]
    if len(sizes) < 2:
        return f"it needs at least 2 factors, got {len(sizes)}"
    if min(sizes) < 2:
        return f"factor(s) {[j for j, s in enumerate(sizes) if s < 2]} take a single value"
    if batch_size < min_batch:
        return f"batch_size must be at least {min_batch}, got {batch_size}"
    return None


def _beta_vae_points(data, encode, rng, batch_size, num_points, chunk_size):
    """Feature vectors mean_b |z(x1_b) - z(x2_b)| of pairs of batches sharing one factor."""
    f = len(data.factor_sizes)
    index = rng.integers(f, size=num_points)
    first = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, f)
    second = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, f)
    rows = np.arange(num_points)
    second[rows, :, index] = first[rows, :, index]
    pairs = np.concatenate([first, second], axis=1)  # [points, 2 * batch, F]

    def reduce(z):
        return np.abs(z[:, :batch_size] - z[:, batch_size:]).mean(axis=1)

    return _encode_batches(data, encode, pairs, reduce, chunk_size), index


def beta_vae_scores(
    data: Any,
    encode: Callable[[torch.Tensor], Any],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    chunk_size: int = ENCODE_CHUNK,
) -> dict[str, float]:
    """BetaVAE score with its training accuracy: ``{"train_accuracy", "eval_accuracy"}``.

    See ``beta_vae_score``.
    """
    from sklearn.linear_model import LogisticRegression

    reason = _score_inputs_reason(data, batch_size, 1)
    if reason is None and min(num_train, num_eval) < 1:
        reason = "num_train and num_eval must be positive"
    if reason:
        _undefined("BetaVAE score", reason)
        return {"train_accuracy": NAN, "eval_accuracy": NAN}
    x_tr, y_tr = _beta_vae_points(data, encode, rng, batch_size, num_train, chunk_size)
    bad = None
    if not np.isfinite(x_tr).all():
        bad = "the codes contain NaN or infinite values"
    elif np.all(x_tr == x_tr[:1]):
        bad = "every code is constant"
    elif len(np.unique(y_tr)) < 2:
        bad = "the training points hold a single fixed factor (num_train too small)"
    if bad:
        _undefined("BetaVAE score", bad)
        return {"train_accuracy": NAN, "eval_accuracy": NAN}
    with _sklearn_fits():
        model = LogisticRegression(random_state=_seed(rng)).fit(x_tr, y_tr)
        train_accuracy = float(np.mean(model.predict(x_tr) == y_tr))
    x_ev, y_ev = _beta_vae_points(data, encode, rng, batch_size, num_eval, chunk_size)
    if not np.isfinite(x_ev).all():
        _undefined("BetaVAE score", "the codes contain NaN or infinite values")
        return {"train_accuracy": train_accuracy, "eval_accuracy": NAN}
    with _sklearn_fits():
        eval_accuracy = float(np.mean(model.predict(x_ev) == y_ev))
    return {"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}


def beta_vae_score(
    data: Any,
    encode: Callable[[torch.Tensor], Any],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    chunk_size: int = ENCODE_CHUNK,
) -> float:
    """BetaVAE score (Higgins et al. 2017): evaluation accuracy, as disentanglement_lib.

    Each point: draw a factor k uniformly, two batches of ``batch_size`` factor vectors that share
    the value of factor k pairwise, and take the feature mean_b |z(x1_b) - z(x2_b)|; a default
    ``LogisticRegression`` learns to predict k from it. The fixed factor leaves a small difference
    in the latents that encode it, so a disentangled code makes k linearly identifiable.
    All batches are sampled up front and encoded ``chunk_size`` observations at a time.
    """
    return beta_vae_scores(
        data,
        encode,
        rng,
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        chunk_size=chunk_size,
    )["eval_accuracy"]


def _factor_vae_votes(data, encode, rng, batch_size, num_points, scale, active, chunk_size):
    """Votes (factors, latents): for each batch with one factor fixed, the normalised latent
    with the least variance votes for that factor."""
    f = len(data.factor_sizes)
    index = rng.integers(f, size=num_points)
    factors = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, f)
    rows = np.arange(num_points)
    factors[rows, :, index] = factors[rows, :1, index]
    active_idx = np.flatnonzero(active)

    def reduce(z):
        local = np.var(z[:, :, active_idx], axis=1, ddof=1) / scale[active_idx]
        return active_idx[np.argmin(local, axis=1)]

    argmin = _encode_batches(data, encode, factors, reduce, chunk_size)
    votes = np.zeros((f, len(active)), dtype=np.int64)
    np.add.at(votes, (index, argmin), 1)
    return votes


def factor_vae_scores(
    data: Any,
    encode: Callable[[torch.Tensor], Any],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    chunk_size: int = ENCODE_CHUNK,
) -> dict[str, float]:
    """FactorVAE score with details: ``{"train_accuracy", "eval_accuracy", "num_active_dims"}``.

    See ``factor_vae_score``.
    """
    nan = {"train_accuracy": NAN, "eval_accuracy": NAN, "num_active_dims": 0}
    reason = _score_inputs_reason(data, batch_size, 2)
    if reason is None and (min(num_train, num_eval) < 1 or num_variance_estimate < 2):
        reason = "num_train and num_eval must be positive and num_variance_estimate at least 2"
    if reason:
        _undefined("FactorVAE score", reason)
        return nan
    sample = data.sample_factors(num_variance_estimate, rng)[:, None, :]
    z = _encode_batches(data, encode, sample, lambda z: z[:, 0], chunk_size)
    if not np.isfinite(z).all():
        _undefined("FactorVAE score", "the codes contain NaN or infinite values")
        return nan
    variance = np.var(z, axis=0, ddof=1)
    active = np.sqrt(variance) >= PRUNE_THRESHOLD
    if not active.any():
        _undefined(
            "FactorVAE score",
            f"every latent is pruned (standard deviation below {PRUNE_THRESHOLD})",
        )
        return nan
    train = _factor_vae_votes(
        data, encode, rng, batch_size, num_train, variance, active, chunk_size
    )
    classifier = np.argmax(train, axis=0)  # latent -> factor by majority vote
    cols = np.arange(train.shape[1])
    evals = _factor_vae_votes(data, encode, rng, batch_size, num_eval, variance, active, chunk_size)
    return {
        "train_accuracy": float(train[classifier, cols].sum() / train.sum()),
        "eval_accuracy": float(evals[classifier, cols].sum() / evals.sum()),
        "num_active_dims": int(active.sum()),
    }


def factor_vae_score(
    data: Any,
    encode: Callable[[torch.Tensor], Any],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    chunk_size: int = ENCODE_CHUNK,
) -> float:
    """FactorVAE score (Kim & Mnih 2018): evaluation accuracy, as disentanglement_lib.

    Latents are scaled by their standard deviation over ``num_variance_estimate`` points, and
    latents with standard deviation below 0.05 are pruned (``prune_dims.threshold = 0.05``: the
    reference compares sqrt(variance) with it). Each point: a factor k drawn uniformly is fixed
    across a batch; the active latent with the smallest normalised variance votes for k. A
    majority-vote classifier (latent -> factor) is fitted on the training votes; the score is its
    accuracy on the evaluation votes. Normalising makes the argmin independent of each latent's
    scale, and pruning keeps collapsed latents (tiny variance) from winning every argmin.
    """
    return factor_vae_scores(
        data,
        encode,
        rng,
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
        chunk_size=chunk_size,
    )["eval_accuracy"]
