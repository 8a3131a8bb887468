"""word2vec's compiled CPU engine: word2vec.c's per-pair SGD, in numba, on Hogwild threads.

Its own file because only this engine needs numba, whose import and first compilation take
seconds (cached on disk after the first run); a GPU run never loads it.

What one call does to a batch of token rows (cut into consecutive parts, one per thread), to
each row as word2vec.c does to a sentence:

1. sub-sampling: each token is kept with its ``keep_prob``; the kept ones close up;
2. each centre draws its window b uniformly from 1..window;
3. skip-gram: for every context word within b, the context word's input vector predicts the
   centre (word2vec.c's ``l1 = last_word``) against ``negatives`` noise words drawn from the
   noise distribution (an alias table); CBOW: the mean of the context words' input vectors
   predicts it;
4. each example updates its vectors at once with plain SGD (:func:`negative_sampling_update`),
   so the next example reads what this one wrote.

Randomness comes from a counter-based generator keyed by (seed, step, row), not from a stream
shared by the threads: with one thread a batch's result is a pure function of the weights and
(seed, step), so resuming is exact. With more threads the rows race on shared vectors without
locks (Hogwild, as word2vec.c and gensim do), and runs differ in the last bits.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True, inline="always")
def _splitmix(state):
    """splitmix64: the next state and a well-mixed 64-bit output."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _uniform(state):
    """The next state and a uniform float in [0, 1)."""
    state, z = _splitmix(state)
    return state, float(z >> _S11) * _TO_UNIT


@njit(cache=True, inline="always")
def _neg_log_sigmoid(f):
    """-log sigma(f), stable for either sign of f."""
    if f > 0:
        return math.log1p(math.exp(-f))
    return -f + math.log1p(math.exp(f))


@njit(cache=True)
def alias_table(p):
    """Walker's alias table of the distribution ``p`` (Vose's construction): drawing i
    uniformly and keeping it with probability ``keep[i]``, else taking ``alias[i]``, gives
    exactly ``p`` in O(1) per draw (a binary search over the cumulative table cost a third of
    the kernel's time)."""
    n = p.shape[0]
    keep = p * (n / p.sum())
    alias = np.arange(n)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = nl = 0
    for i in range(n):
        if keep[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        nl -= 1
        s, g = small[ns], large[nl]
        alias[s] = g
        keep[g] -= 1.0 - keep[s]
        if keep[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    for i in range(nl):  # what rounding left over is exactly 1
        keep[large[i]] = 1.0
    for i in range(ns):
        keep[small[i]] = 1.0
    return keep, alias


@njit(cache=True, inline="always")
def _draw(keep, alias, u):
    """One draw from an alias table, given a uniform u in [0, 1)."""
    n = keep.shape[0]
    scaled = u * n
    i = min(int(scaled), n - 1)
    return i if scaled - i < keep[i] else alias[i]


@njit(cache=True)
def draw_many(keep, alias, key, n):
    """``n`` draws from an alias table with the kernel's generator (for tests)."""
    state = np.uint64(key)
    out = np.empty(n, np.int64)
    for k in range(n):
        state, u = _uniform(state)
        out[k] = _draw(keep, alias, u)
    return out


@njit(cache=True, fastmath=True, nogil=True)
def negative_sampling_update(syn1, h, target, noise_words, alpha, grad_h):
    """word2vec.c's update for one example: input vector ``h`` predicts ``target`` against
    ``noise_words`` (those equal to the target are skipped). For each word t with label l (1
    for the target, 0 for noise) and g = alpha (l - sigma(h . u_t)):
    ``grad_h += g u_t`` and then ``u_t += g h``, u_t the row t of ``syn1`` (updated in place).
    The caller adds ``grad_h`` to the input rows. Returns the example's loss before the update,
    ``-log sigma(h . u_target) - sum_k log sigma(-h . u_k)``."""
    dim = h.shape[0]
    for j in range(dim):
        grad_h[j] = 0.0
    loss = 0.0
    for k in range(noise_words.shape[0] + 1):
        if k == 0:
            t, label = target, 1.0
        else:
            t = noise_words[k - 1]
            if t == target:
                continue
            label = 0.0
        f = np.float32(0.0)  # float32 throughout, as word2vec.c: twice the SIMD lanes
        for j in range(dim):
            f += h[j] * syn1[t, j]
        loss += _neg_log_sigmoid(f) if label > 0 else _neg_log_sigmoid(-f)
        g = np.float32(alpha * (label - 1.0 / (1.0 + math.exp(-f))))
        for j in range(dim):
            grad_h[j] += g * syn1[t, j]
            syn1[t, j] += g * h[j]
    return loss


@njit(cache=True, fastmath=True, nogil=True)
def train_rows(
    syn0,
    syn1,
    rows,
    first_row,
    keep_prob,
    noise_keep,
    noise_alias,
    window,
    negatives,
    cbow,
    alpha,
    key,
    losses,
    pairs,
):
    """One SGD pass over ``rows`` [n, length] (0 is padding), the rows ``first_row``.. of a
    batch: row r with its own generator keyed by ``key`` and r, so that how the rows are
    split among threads changes no draw. Writes each row's summed loss and example count.
    Runs without the GIL: the threads of :func:`run_batch` call it side by side."""
    n, length = rows.shape
    dim = syn0.shape[1]
    kept = np.empty(length, np.int64)
    h = np.empty(dim, np.float32)
    grad_h = np.empty(dim, np.float32)
    noise = np.empty(negatives, np.int64)
    for i in range(n):
        r = first_row + i
        state = np.uint64(key) ^ (np.uint64(r) * _MIX2)
        state, _ = _splitmix(state)
        m = 0
        for j in range(length):
            w = rows[i, j]
            if w == 0:
                continue
            state, u = _uniform(state)
            if u < keep_prob[w]:
                kept[m] = w
                m += 1
        loss, count = 0.0, 0
        for j in range(m):
            state, u = _uniform(state)
            reach = 1 + min(int(u * window), window - 1)
            lo, hi = max(0, j - reach), min(m, j + reach + 1)
            if hi - lo <= 1:
                continue
            if cbow:
                for d in range(dim):
                    h[d] = 0.0
                for o in range(lo, hi):
                    if o != j:
                        for d in range(dim):
                            h[d] += syn0[kept[o], d]
                for d in range(dim):
                    h[d] /= hi - lo - 1
                for k in range(negatives):
                    state, u = _uniform(state)
                    noise[k] = _draw(noise_keep, noise_alias, u)
                loss += negative_sampling_update(syn1, h, kept[j], noise, alpha, grad_h)
                count += 1
                for o in range(lo, hi):
                    if o != j:
                        for d in range(dim):
                            syn0[kept[o], d] += grad_h[d]
                continue
            for o in range(lo, hi):
                if o == j:
                    continue
                word = kept[o]
                for d in range(dim):
                    h[d] = syn0[word, d]
                for k in range(negatives):
                    state, u = _uniform(state)
                    noise[k] = _draw(noise_keep, noise_alias, u)
                loss += negative_sampling_update(syn1, h, kept[j], noise, alpha, grad_h)
                count += 1
                for d in range(dim):
                    syn0[word, d] += grad_h[d]
        losses[i] = loss
        pairs[i] = count


def step_key(seed: int, step: int) -> int:
    """The generator key of one step: a function of (seed, step) only."""
    state = np.uint64((seed * 1_000_003 + step) & 0xFFFFFFFFFFFFFFFF)
    return int(_splitmix(state)[1])


def run_batch(
    syn0: np.ndarray,
    syn1: np.ndarray,
    rows: np.ndarray,
    keep_prob: np.ndarray,
    noise_table: tuple[np.ndarray, np.ndarray],
    *,
    window: int,
    negatives: int,
    cbow: bool,
    alpha: float,
    key: int,
    threads: int,
) -> tuple[float, int]:
    """Train on ``rows`` in place; (summed loss, examples). The rows are cut into ``threads``
    consecutive parts, each trained by :func:`train_rows` on its own thread (plain Python
    threads around a GIL-free kernel, as gensim's workers; numba's OpenMP layer slowed to half
    speed once scikit-learn had loaded its own OpenMP runtime)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    losses = np.zeros(len(rows), np.float64)
    pairs = np.zeros(len(rows), np.int64)
    settings = (*noise_table, window, negatives, cbow, np.float32(alpha), np.uint64(key))
    bounds = np.linspace(0, len(rows), max(1, min(threads, len(rows))) + 1).astype(int)
    parts = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]

    def run(lo: int, hi: int) -> None:
        train_rows(syn0, syn1, rows[lo:hi], lo, keep_prob, *settings, losses[lo:hi], pairs[lo:hi])

    if len(parts) <= 1:
        run(0, len(rows))
    else:
        for future in [_pool(len(parts)).submit(run, lo, hi) for lo, hi in parts]:
            future.result()
    return float(losses.sum()), int(pairs.sum())


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """One pool of worker threads per thread count, kept for the process's life."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="word2vec")
    return _POOLS[threads]
