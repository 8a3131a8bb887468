"""How well masks segment images into objects: the adjusted Rand index (ARI) per image, and the
two baselines object models are compared with (random masks; k-means on pixel colour).

Pure functions of integer label images ``[n, pixels]`` (a segment id per pixel; any ids, the
scores are invariant to renaming them). ARI (Hubert and Arabie 1985) counts pixel pairs: with
the pair-confusion counts tp (same segment in both), tn (different in both), fp and fn,

    ARI = 2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)),

1 when the partitions agree (scikit-learn's ``adjusted_rand_score``, per image, in one batched
pass). Foreground ARI, as MONet, IODINE and Slot Attention report it, counts only the pixels
whose true segment is not the background.
"""

from __future__ import annotations

import numpy as np


def _labels(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer labels [images, pixels], got {a.dtype} "
                         f"{a.shape}")  # fmt: skip
    return a


def _dense(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renamed 0..k-1 per batch (np.unique), and k."""
    values, inverse = np.unique(a, return_inverse=True)
    return inverse.reshape(a.shape), len(values)


def adjusted_rand_index(true, pred, counted=None) -> np.ndarray:
    """ARI of ``pred`` against ``true`` for each image ([n] float64). ``counted`` ([n, pixels]
    bool) restricts each image to its True pixels; an image with fewer than two counted pixels,
    or whose partitions agree, scores 1 (as scikit-learn's special case)."""
    true, pred = _labels(true, "true"), _labels(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"true {true.shape} and pred {pred.shape} differ in shape")
    n = len(true)
    weights = np.ones(true.shape) if counted is None else np.asarray(counted, dtype=float)
    t, kt = _dense(true)
    p, kp = _dense(pred)
    joint = (np.arange(n)[:, None] * kt + t) * kp + p
    cont = np.bincount(joint.ravel(), weights.ravel(), minlength=n * kt * kp).reshape(n, kt, kp)
    cont = np.rint(cont).astype(np.int64)
    rows, cols = cont.sum(2), cont.sum(1)  # sizes of the true and the predicted segments
    total = rows.sum(1)
    squares = (cont**2).sum((1, 2))
    tp = squares - total
    fp = (cont * cols[:, None, :]).sum((1, 2)) - squares
    fn = (cont * rows[:, :, None]).sum((1, 2)) - squares
    tn = total**2 - fp - fn - squares
    tp, fp, fn, tn = (x.astype(np.float64) for x in (tp, fp, fn, tn))
    den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    agree = (fn == 0) & (fp == 0)
    return np.where(agree, 1.0, 2.0 * (tp * tn - fn * fp) / np.where(agree, 1.0, den))


def foreground_ari(true, pred, background: int = 0) -> np.ndarray:
    """ARI over the pixels whose true label is not ``background``, per image."""
    true = _labels(true, "true")
    return adjusted_rand_index(true, pred, counted=true != background)


def random_segments(n: int, pixels: int, k: int, seed: int = 0) -> np.ndarray:
    """The chance baseline: each pixel in one of ``k`` segments uniformly at random."""
    return np.random.default_rng(seed).integers(0, k, (n, pixels))


def colour_segments(images, k: int, seed: int = 0) -> np.ndarray:
    """The colour baseline: each image's pixels clustered by colour with k-means into ``k``
    segments ([n, C, H, W] -> [n, H*W]); strong wherever objects differ in colour from the
    background and each other, as on Multi-dSprites."""
    from sklearn.cluster import KMeans

    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"images: expected [n, channels, height, width], got {x.shape}")
    out = np.zeros((len(x), x.shape[2] * x.shape[3]), dtype=np.int64)
    for i, img in enumerate(x):
        pixels = img.reshape(img.shape[0], -1).T
        distinct = len(np.unique(pixels, axis=0))
        km = KMeans(n_clusters=min(k, distinct), n_init=3, random_state=seed)
        out[i] = km.fit_predict(pixels)
    return out
