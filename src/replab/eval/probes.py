"""Label-efficiency probes on frozen features: linear probe, k-NN, k-means, per-factor probes.

All functions are pure: NumPy arrays in, plain floats and dicts out, randomness only from an
explicit seed. The heavy parts (logistic regression, k-NN) run in torch on ``device``, so the
same code serves a laptop CPU and a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

# L2 strengths tried by the linear probe, strongest first (each fit warm-starts the next).
# lam multiplies 0.5 * ||W||^2 added to the *mean* cross-entropy, i.e. sklearn's C = 1 / (lam n).
L2_GRID: tuple[float, ...] = (1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
# Used when there is nothing to select lam on (e.g. one labelled example per class, < 3 in all).
DEFAULT_L2 = 1e-2
HOLDOUT_FRACTION = 0.2  # share of the labelled subset held out to choose lam
MIN_HOLDOUT = 20  # below this many held-out examples, choose lam by leave-one-out instead
LOO_MAX_PARAMS = 2**21  # leave-one-out fits n models at once; cap on n * (d + 1) * classes
MAX_ITER = 200  # L-BFGS iterations per fit
GRAD_TOL = 1e-5  # L-BFGS stops when every gradient entry is below this
# CPU fits with fewer multiply-adds per evaluation than this run on one thread: for small
# problems, thread synchronisation costs more than the work it shares.
SINGLE_THREAD_WORK = 2**22


# ----------------------------------------------------------------------------- helpers

# Raw inputs wider than this are read through their leading principal components by the parts
# that fit many readouts on them (robustness, generalisation, transfer): on 64x64 images a
# readout on every pixel cost a hundred times as much.
RAW_COMPONENTS = 256


def principal_components(
    x: np.ndarray, k: int = RAW_COMPONENTS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean [d], basis [d, k']) of the leading principal components of ``x`` [n, d], k' =
    min(k, n), so that ``(x - mean) @ basis`` are the scores; None when d <= k (use x as is)."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    if x.shape[1] <= k:
        return None
    pca = PCA(min(k, len(x)), svd_solver="randomized", random_state=seed).fit(x)
    return pca.mean_.astype(np.float32), pca.components_.T.astype(np.float32)


def _device(device: str | torch.device) -> torch.device:
    return torch.device(device)


@contextmanager
def threads_for(work: int, device: torch.device) -> Iterator[None]:
    """One intra-op thread while running a small CPU computation, restored afterwards."""
    before = torch.get_num_threads()
    if device.type != "cpu" or work >= SINGLE_THREAD_WORK or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _encode_labels(
    train_labels: np.ndarray, test_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Map labels to 0..K-1 by the training classes; test labels unseen in training become -1."""
    train_labels = np.asarray(train_labels).reshape(-1)
    test_labels = np.asarray(test_labels).reshape(-1)
    classes, y_train = np.unique(train_labels, return_inverse=True)
    pos = np.clip(np.searchsorted(classes, test_labels), 0, len(classes) - 1)
    y_test = np.where(classes[pos] == test_labels, pos, -1)
    return y_train.astype(np.int64), y_test.astype(np.int64), len(classes)


def _check_pair(feats: np.ndarray, labels: np.ndarray, what: str) -> np.ndarray:
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"{what} features must be 2-D [n, d], got shape {feats.shape}")
    if len(feats) != len(np.asarray(labels).reshape(-1)):
        raise ValueError(f"{what}: {len(feats)} feature rows but {len(labels)} labels")
    if len(feats) == 0:
        raise ValueError(f"{what}: no examples")
    return feats


def _standardiser(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the columns of x; constant columns get std 1 (left unscaled)."""
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    return mean, torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))


def _stratified_subset(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """round(fraction * n_c) examples of each class c, at least one (sorted indices)."""
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        m = max(1, int(np.floor(fraction * len(idx) + 0.5)))
        picked.append(rng.permutation(idx)[:m])
    return np.sort(np.concatenate(picked))


def _stratified_holdout(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..n-1 into (fit, held-out): round(fraction * n_c) of class c held out,
    always leaving at least one example of each class to fit on."""
    fit, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        v = min(int(np.floor(fraction * len(idx) + 0.5)), len(idx) - 1)
        held.append(idx[:v])
        fit.append(idx[v:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


# ------------------------------------------------------------------ logistic regression


def _loss_and_grad(W, b, x, onehot, l2, weight):
    """Sum over models m of  sum_i weight_mi CE(x_i W_m + b_m, y_i) + l2/2 ||W_m||^2,
    and its gradient (written out: softmax minus one-hot, cheaper than autograd).

    W [M, d, K], b [M, K], x [n, d], onehot [n, K]; ``weight`` [M, n] or [1, n] (rows summing
    to 1: the plain mean, or e.g. leaving one example out per model). The bias is not
    penalised (as in sklearn).
    """
    logits = torch.matmul(x, W) + b[:, None, :]  # [M, n, K]
    lse = torch.logsumexp(logits, -1, keepdim=True)
    ce = lse.squeeze(-1) - (logits * onehot).sum(-1)  # [M, n]
    loss = (ce * weight).sum() + 0.5 * l2 * W.square().sum()
    g = (torch.exp(logits - lse) - onehot) * weight[..., None]  # dloss/dlogits
    return loss, torch.matmul(x.T, g) + l2 * W, g.sum(1)


def _fit(x, y, n_classes, l2, init=None, weight=None, n_models=1, max_iter=MAX_ITER):
    """Full-batch L-BFGS (strong Wolfe line search) for ``n_models`` logistic regressions."""
    if init is None:
        W = x.new_zeros(n_models, x.shape[1], n_classes)
        b = x.new_zeros(n_models, n_classes)
    else:
        W, b = init[0].clone(), init[1].clone()
    onehot = torch.nn.functional.one_hot(y, n_classes).to(x.dtype)
    if weight is None:
        weight = x.new_full((1, len(x)), 1.0 / len(x))
    opt = torch.optim.LBFGS(
        [W, b],
        lr=1.0,
        max_iter=max_iter,
        history_size=10,
        tolerance_grad=GRAD_TOL,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure():
        loss, W.grad, b.grad = _loss_and_grad(W, b, x, onehot, l2, weight)
        return loss

    with torch.no_grad(), threads_for(W.numel() * len(x), x.device):
        opt.step(closure)
    W.grad = b.grad = None
    return W, b


def _score(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean log-loss) of logits [n, K] for labels y [n] (label -1 always wrong)."""
    acc = (logits.argmax(-1) == y).float().mean().item()
    known = y >= 0
    lse = torch.logsumexp(logits[known], -1)
    nll = (lse - logits[known].gather(-1, y[known, None]).squeeze(-1)).mean().item()
    return acc, nll


def _select_and_fit(x, y, n_classes, rng, width=None):
    """Choose lam from L2_GRID, then refit on all of (x, y) (already standardised).

    Selection by held-out accuracy (ties broken by log-loss) on a stratified 20% part. With
    fewer than MIN_HOLDOUT held-out examples: leave-one-out instead (the n models fitted at once
    as one batched problem), when n >= 3 and n (d + 1) K <= LOO_MAX_PARAMS; otherwise the small
    held-out part if it is not empty, else lam = DEFAULT_L2. Each fit warm-starts from the
    previous (stronger) lam; the refit starts from the chosen solution. ``width`` is the d that
    the leave-one-out cap counts (the features' own width when x holds their coordinates in a
    smaller basis). Returns (W [d, K], b [K], lam).
    """
    n, d = x.shape[0], width or x.shape[1]
    fit_pos, held_pos = _stratified_holdout(y.cpu().numpy(), HOLDOUT_FRACTION, rng)
    loo_ok = n >= 3 and n * (d + 1) * n_classes <= LOO_MAX_PARAMS
    if len(held_pos) >= MIN_HOLDOUT or (not loo_ok and len(held_pos) > 0):
        fit_t = torch.as_tensor(fit_pos, device=x.device)
        held_t = torch.as_tensor(held_pos, device=x.device)
        xf, yf, xh, yh = x[fit_t], y[fit_t], x[held_t], y[held_t]
        best, init = None, None
        for lam in L2_GRID:
            init = _fit(xf, yf, n_classes, lam, init=init)
            acc, nll = _score(xh @ init[0][0] + init[1][0], yh)
            if best is None or (acc, -nll) > best[0]:
                best = ((acc, -nll), lam, init)
        _, lam, start = best
    elif loo_ok:
        weight = (1.0 - torch.eye(n, device=x.device, dtype=x.dtype)) / (n - 1)
        best, init = None, None
        for lam in L2_GRID:
            init = _fit(x, y, n_classes, lam, init=init, weight=weight, n_models=n)
            logits = torch.einsum("md,mdk->mk", x, init[0]) + init[1]
            acc, nll = _score(logits, y)
            if best is None or (acc, -nll) > best[0]:
                best = ((acc, -nll), lam, init)
        _, lam, start = best
        start = (start[0].mean(0, keepdim=True), start[1].mean(0, keepdim=True))
    else:
        lam, start = DEFAULT_L2, None
    W, b = _fit(x, y, n_classes, lam, init=start)
    return W[0], b[0], lam


def fit_logistic(
    feats: np.ndarray,
    labels: np.ndarray,
    *,
    l2: float,
    device: str | torch.device = "cpu",
    max_iter: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (no standardisation), as sklearn's with C = 1/(l2 n).

    Minimises  mean_i CE(W x_i + b, y_i) + l2/2 ||W||^2  by L-BFGS in torch; labels must be
    0..K-1. Returns (coef [K, d], intercept [K]), the shapes of sklearn's ``coef_``.
    """
    dev = _device(device)
    x = torch.as_tensor(np.asarray(feats), dtype=torch.float32, device=dev)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=dev)
    W, b = _fit(x, y, int(y.max().item()) + 1, float(l2), max_iter=max_iter)
    return W[0].T.cpu().numpy(), b[0].cpu().numpy()


def _fit_standardised(x_train, y_train, n_classes, rng):
    """Standardise by x_train's statistics, select lam, fit; the standardisation folded into
    the weights, so that ``x @ W + b`` are the logits of raw features. (W [d, K], b [K], lam)."""
    mean, std = _standardiser(x_train)
    z = (x_train - mean) / std
    n, d = z.shape
    if d > n:
        # Wider than it is long (few labels, wide codes): the L2-penalised optimum, and every
        # L-BFGS iterate from zero, lie in the row space of z (the gradient x^T g does), so fit
        # in an orthonormal basis of it, r <= n wide instead of d, and map back: the same
        # optimum at about r / d of the cost per iteration. Only the stopping test moves: every
        # gradient entry below GRAD_TOL is stricter in the basis, where the same gradient has
        # fewer, larger entries, so a near-flat problem (tiny lam) can stop at another point
        # of its flat optimum than it did in the d coordinates.
        _, s, vh = torch.linalg.svd(z, full_matrices=False)
        basis = vh[: int((s > s[0] * 1e-6).sum())].T  # [d, r]
        W, b, lam = _select_and_fit(z @ basis, y_train, n_classes, rng, width=d)
        W = basis @ W
    else:
        W, b, lam = _select_and_fit(z, y_train, n_classes, rng)
    W_raw = W / std[:, None]
    return W_raw, b - mean @ W_raw, lam


def fit_linear_probe(
    feats: np.ndarray, labels: np.ndarray, *, seed: int = 0, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The linear probe's classifier on all of (feats, labels), as ``linear_probe`` fits it
    (standardised features, L2 chosen on a held-out part drawn with ``seed``), returned as
    torch weights on raw features: (W [d, K], b [K], classes [K]), logits ``x @ W + b``."""
    feats = _check_pair(feats, labels, "train")
    classes, y = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    if len(classes) < 2:
        raise ValueError("a linear probe needs at least two classes in the training labels")
    dev = _device(device)
    x = torch.as_tensor(feats, dtype=torch.float32, device=dev)
    y_t = torch.as_tensor(y.astype(np.int64), device=dev)
    W, b, _ = _fit_standardised(x, y_t, len(classes), np.random.default_rng(seed))
    return W, b, classes


def probe_accuracy(probe: tuple[torch.Tensor, torch.Tensor, np.ndarray], feats, labels) -> float:
    """Accuracy on (feats, labels) of a classifier from ``fit_linear_probe``."""
    W, b, classes = probe
    x = torch.as_tensor(np.asarray(feats), dtype=torch.float32, device=W.device)
    pred = classes[(x @ W + b).argmax(1).cpu().numpy()]
    return float(np.mean(pred == np.asarray(labels).reshape(-1)))


def _probe(x_train, y_train, n_classes, x_test, y_test, rng) -> tuple[float, float]:
    """Standardise by x_train's statistics, select lam, fit, return (test accuracy, lam)."""
    # The standardisation is folded into the weights instead of copying the test set.
    W_raw, b_raw, lam = _fit_standardised(x_train, y_train, n_classes, rng)
    correct = 0
    for start in range(0, len(x_test), 65536):
        logits = x_test[start : start + 65536] @ W_raw + b_raw
        correct += (logits.argmax(-1) == y_test[start : start + 65536]).sum().item()
    return correct / len(x_test), lam


def linear_probe(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    test_labels: np.ndarray,
    *,
    fractions: Sequence[float] = (0.01, 0.1, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    device: str | torch.device = "cpu",
) -> dict[str, dict]:
    """Test accuracy of a linear classifier trained on a fraction of the labels.

    For each fraction and seed: a stratified subset (round(fraction * n_c) per class, >= 1),
    features standardised with the subset's statistics, multinomial logistic regression with
    L2 strength chosen from ``L2_GRID`` on a stratified 20% held-out part (leave-one-out when
    that part would have fewer than 20 examples; ``DEFAULT_L2`` for < 3 labels), refit on the
    whole subset. The accuracy at few labels measures how linearly *and* label-efficiently the
    features separate the classes.

    Returns {str(fraction): {"mean", "std" (np.std over seeds, ddof=0), "scores" (per seed),
    "l2" (chosen per seed), "n_labels" (subset size of the first seed)}}. Same seeds -> same
    numbers. Test labels not seen in training count as errors.
    """
    train_feats = _check_pair(train_feats, train_labels, "train")
    test_feats = _check_pair(test_feats, test_labels, "test")
    y_tr, y_te, n_classes = _encode_labels(train_labels, test_labels)
    if n_classes < 2:
        raise ValueError("linear_probe needs at least two classes in the training labels")
    dev = _device(device)
    x_train = torch.as_tensor(train_feats, dtype=torch.float32, device=dev)
    x_test = torch.as_tensor(test_feats, dtype=torch.float32, device=dev)
    y_train = torch.as_tensor(y_tr, device=dev)
    y_test = torch.as_tensor(y_te, device=dev)

    out: dict[str, dict] = {}
    for fraction in fractions:
        fraction = float(fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fractions must lie in (0, 1], got {fraction}")
        scores, lams, n_labels = [], [], []
        for seed in seeds:
            rng = np.random.default_rng([int(seed), int(round(fraction * 1e6))])
            idx = _stratified_subset(y_tr, fraction, rng)
            idx_t = torch.as_tensor(idx, device=dev)
            acc, lam = _probe(x_train[idx_t], y_train[idx_t], n_classes, x_test, y_test, rng)
            scores.append(acc)
            lams.append(lam)
            n_labels.append(len(idx))
        out[str(fraction)] = {
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "scores": [float(s) for s in scores],
            "l2": lams,
            "n_labels": n_labels[0],
        }
    return out


# ------------------------------------------------------------------------------- k-NN


def knn_accuracy(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    test_labels: np.ndarray,
    *,
    k: int = 20,
    temperature: float = 0.07,
    device: str | torch.device = "cpu",
    max_chunk_elements: int = 2**24,
) -> float:
    """Weighted k-NN accuracy (Wu et al. 2018; DINO's eval_knn).

    Cosine similarity s between L2-normalised features; the k most similar training points
    vote for their class with weight exp(s / temperature); the class with the largest summed
    vote wins (ties: the smallest class). No training, no hyper-parameter search: a cheap
    check of the features' local class structure. Test points are processed in chunks so the
    similarity block holds at most ``max_chunk_elements`` entries.
    """
    train_feats = _check_pair(train_feats, train_labels, "train")
    test_feats = _check_pair(test_feats, test_labels, "test")
    y_tr, y_te, n_classes = _encode_labels(train_labels, test_labels)
    dev = _device(device)
    train = torch.nn.functional.normalize(
        torch.as_tensor(train_feats, dtype=torch.float32, device=dev), dim=1
    )
    test = torch.as_tensor(test_feats, dtype=torch.float32, device=dev)
    y_train = torch.as_tensor(y_tr, device=dev)
    y_test = torch.as_tensor(y_te, device=dev)
    k = min(int(k), len(train))
    chunk = max(1, max_chunk_elements // len(train))
    correct = 0
    for start in range(0, len(test), chunk):
        q = torch.nn.functional.normalize(test[start : start + chunk], dim=1)
        sim, nn_idx = (q @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(q), n_classes, device=dev, dtype=sim.dtype)
        votes.scatter_add_(1, y_train[nn_idx], torch.exp(sim / temperature))
        correct += (votes.argmax(1) == y_test[start : start + chunk]).sum().item()
    return correct / len(test)


# ---------------------------------------------------------------------------- k-means


def clustering_scores(
    feats: np.ndarray,
    labels: np.ndarray,
    *,
    n_clusters: int | None = None,
    seed: int = 0,
    n_init: int = 10,
) -> dict[str, float]:
    """Agreement of k-means clusters of the standardised features with the labels.

    KMeans (scikit-learn, k = number of classes unless given, ``n_init`` restarts, fixed
    seed); NMI (arithmetic normalisation) and adjusted Rand index between clusters and labels:
    1 = the classes are the natural clusters, ~0 = unrelated. Needs no labels to fit.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    feats = _check_pair(feats, labels, "clustering")
    labels = np.asarray(labels).reshape(-1)
    k = len(np.unique(labels)) if n_clusters is None else int(n_clusters)
    x = feats.astype(np.float64)
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 1e-12, std, 1.0)
    pred = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
    return {
        "nmi": float(normalized_mutual_info_score(labels, pred)),
        "ari": float(adjusted_rand_score(labels, pred)),
    }


# ---------------------------------------------------------------------- factor probes


def factor_probes(
    train_feats: np.ndarray,
    train_factors: np.ndarray,
    test_feats: np.ndarray,
    test_factors: np.ndarray,
    factor_names: Sequence[str],
    *,
    categorical: Collection[str] = frozenset(),
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, dict]:
    """How linearly each ground-truth factor can be read from the features.

    Categorical factors (e.g. shape): test accuracy of the linear probe's logistic regression
    (all labels, L2 chosen on a held-out part drawn with ``seed``); chance is 1 / n_values.
    Ordinal factors (scale, orientation, position): test R^2 = 1 - SS_res / SS_tot of ridge
    regression of the factor index on the standardised features (alpha by efficient
    leave-one-out over 1e-3..1e3); 0 = no better than the mean. A factor with a single value
    in training (or, for R^2, in the test set) cannot be probed: score NaN and a warning.

    Returns {name: {"kind": "accuracy" | "r2", "score": float}}.
    """
    from sklearn.linear_model import RidgeCV

    train_feats = np.asarray(train_feats)
    test_feats = np.asarray(test_feats)
    train_factors = np.asarray(train_factors).reshape(len(train_feats), -1)
    test_factors = np.asarray(test_factors).reshape(len(test_feats), -1)
    names = list(factor_names)
    if train_factors.shape[1] != len(names) or test_factors.shape[1] != len(names):
        raise ValueError(
            f"{len(names)} factor names but factors of shape {train_factors.shape} (train) "
            f"and {test_factors.shape} (test)"
        )
    unknown = set(categorical) - set(names)
    if unknown:
        raise ValueError(f"categorical names {sorted(unknown)} are not among {names}")

    dev = _device(device)
    x_train = torch.as_tensor(train_feats, dtype=torch.float32, device=dev)
    x_test = torch.as_tensor(test_feats, dtype=torch.float32, device=dev)
    mean = train_feats.mean(0)
    std = train_feats.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    z_train = (train_feats - mean) / std
    z_test = (test_feats - mean) / std

    out: dict[str, dict] = {}
    for j, name in enumerate(names):
        kind = "accuracy" if name in categorical else "r2"
        f_train, f_test = train_factors[:, j], test_factors[:, j]
        if len(np.unique(f_train)) < 2 or (kind == "r2" and len(np.unique(f_test)) < 2):
            warnings.warn(
                f"factor {name!r} takes a single value in the "
                f"{'training' if len(np.unique(f_train)) < 2 else 'test'} data: "
                "nothing to predict, score is NaN",
                RuntimeWarning,
                stacklevel=2,
            )
            out[name] = {"kind": kind, "score": float("nan")}
            continue
        if kind == "accuracy":
            y_tr, y_te, n_classes = _encode_labels(f_train, f_test)
            rng = np.random.default_rng([int(seed), j])
            score, _ = _probe(
                x_train,
                torch.as_tensor(y_tr, device=dev),
                n_classes,
                x_test,
                torch.as_tensor(y_te, device=dev),
                rng,
            )
        else:
            ridge = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(z_train, f_train.astype(float))
            resid = f_test - ridge.predict(z_test)
            score = 1.0 - np.sum(resid**2) / np.sum((f_test - f_test.mean()) ** 2)
        out[name] = {"kind": kind, "score": float(score)}
    return out
