"""word2vec's compiled engine: its update is word2vec.c's, its draws follow the model's
distributions, and a run through the training loop is exact to resume on one thread."""

import math

import numpy as np
import pytest
import torch
from word2vec_topics import assert_topics_separate, topic_corpus

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods import word2vec_kernel as kernel
from replab.methods.word2vec import Word2Vec, Word2VecConfig, noise_distribution


def sigmoid(f):
    return 1.0 / (1.0 + math.exp(-f))


def test_one_pair_updates_as_word2vec_c_by_hand():
    """word2vec.c, skip-gram with negative sampling, for input word i, target o, noise n:
    g = alpha (label - sigma(v_i . u_t)); neu1e += g u_t; u_t += g v_i; finally v_i += neu1e."""
    rng = np.random.default_rng(0)
    syn0 = rng.normal(0, 0.3, (6, 4)).astype(np.float32)
    syn1 = rng.normal(0, 0.3, (6, 4)).astype(np.float32)
    i, o, noise, alpha = 2, 3, np.array([5, 3, 1]), 0.05  # noise word 3 is the target: skipped
    v = syn0[i].astype(np.float64)
    u = syn1.astype(np.float64)
    expected_u, neu1e, loss = u.copy(), np.zeros(4), 0.0
    for t, label in ((o, 1.0), (5, 0.0), (1, 0.0)):
        f = v @ expected_u[t]
        loss -= math.log(sigmoid(f) if label else 1 - sigmoid(f))
        g = alpha * (label - sigmoid(f))
        neu1e += g * expected_u[t]
        expected_u[t] += g * v
    grad = np.zeros(4, np.float32)
    h = syn0[i].copy()
    got_loss = kernel.negative_sampling_update(syn1, h, o, noise, np.float32(alpha), grad)
    np.testing.assert_allclose(syn1, expected_u, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad, neu1e, rtol=1e-5, atol=1e-7)
    assert got_loss == pytest.approx(loss, rel=1e-5)
    assert np.array_equal(syn1[[0, 2, 4]], u[[0, 2, 4]].astype(np.float32))  # untouched rows


def test_alias_table_gives_the_noise_distribution_exactly():
    counts = torch.tensor([0, 5000, 1000, 200, 50, 10, 0, 3])
    p = noise_distribution(counts, 0.75).numpy()
    keep, alias = kernel.alias_table(p)
    n = len(p)
    implied = keep / n
    np.add.at(implied, alias, (1.0 - keep) / n)
    np.testing.assert_allclose(implied, p, atol=1e-12)
    draws = kernel.draw_many(keep, alias, 7, 200_000)
    freq = np.bincount(draws, minlength=n) / len(draws)
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / len(draws)) + 1e-12)
    assert freq[0] == 0 and freq[6] == 0  # padding and never-seen words are never noise


def run(rows, keep_prob, window, threads=1, key=3, dim=8, vocab=10, negatives=2):
    syn0 = np.full((vocab, dim), 0.01, np.float32)
    syn1 = np.zeros((vocab, dim), np.float32)
    p = np.r_[0.0, np.ones(vocab - 1)]
    table = kernel.alias_table(p / p.sum())
    losses = np.zeros(len(rows))
    pairs = np.zeros(len(rows), np.int64)
    kernel.train_rows(
        syn0, syn1, np.ascontiguousarray(rows, np.int64), 0, np.asarray(keep_prob, float),
        *table, window, negatives, False, np.float32(0.0), np.uint64(key), losses, pairs,
    )  # fmt: skip
    return pairs


def test_window_shrinking_draws_each_centres_reach_uniformly():
    """No sub-sampling: centre j of a row of L words pairs with min(j, b) + min(L-1-j, b)
    words, b uniform in 1..W; the mean count over many rows is that expectation."""
    length, window, n = 12, 4, 4000
    rows = np.tile(np.arange(1, length + 1) % 9 + 1, (n, 1))
    expected = sum(
        np.mean([min(j, b) + min(length - 1 - j, b) for b in range(1, window + 1)])
        for j in range(length)
    )
    counts = run(rows, np.ones(10), window)
    sd = counts.std() / math.sqrt(n)
    assert abs(counts.mean() - expected) < 4 * sd
    assert counts.min() >= 2 * (length - 1) and counts.max() <= 2 * sum(
        min(length - 1 - j, window) for j in range(length)
    )


def test_subsampling_keeps_each_word_at_its_probability():
    """Window 1, every word kept with p: a row keeps m ~ Binomial(L, p) words and makes
    2 max(m - 1, 0) pairs."""
    length, p, n = 10, 0.3, 6000
    rows = np.full((n, length), 4)
    keep = np.zeros(10)
    keep[4] = p
    counts = run(rows, keep, window=1)
    m = np.arange(length + 1)
    pm = np.array([math.comb(length, k) * p**k * (1 - p) ** (length - k) for k in m])
    expected = float((2 * np.maximum(m - 1, 0) * pm).sum())
    assert abs(counts.mean() - expected) < 4 * counts.std() / math.sqrt(n)


def test_splitting_rows_among_threads_changes_no_draw():
    rows = np.random.default_rng(1).integers(0, 10, (9, 16))
    keep = np.full(10, 0.7)
    assert np.array_equal(run(rows, keep, 5, key=11), run(rows, keep, 5, key=11))
    whole = run(rows, keep, 5, key=11)
    syn0 = np.zeros((10, 8), np.float32)
    syn1 = np.zeros((10, 8), np.float32)
    pairs = np.zeros(9, np.int64)
    table = kernel.alias_table(np.r_[0.0, np.ones(9)] / 9)
    for lo, hi in ((0, 4), (4, 9)):  # the second part keeps its global row numbers
        kernel.train_rows(
            syn0, syn1, rows[lo:hi].astype(np.int64), lo, keep, *table,
            5, 2, False, np.float32(0.0), np.uint64(11), np.zeros(hi - lo), pairs[lo:hi],
        )  # fmt: skip
    assert np.array_equal(pairs, whole)
    assert not np.array_equal(run(rows, keep, 5, key=12), whole)


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_the_compiled_engine_learns_which_words_share_contexts(architecture):
    x, info = topic_corpus()
    torch.manual_seed(0)
    model = Word2Vec(Word2VecConfig(dim=10, sample=0.0, architecture=architecture), info)
    assert model.updates_itself()  # auto, on a CPU
    for step in range(25):
        logs = model.update({"x": x[(step % 5) * 80 : (step % 5 + 1) * 80]}, step, 1 - step / 25)
        assert logs["pairs"] > 0 and torch.isfinite(logs["loss"])
    assert_topics_separate(model.token_vectors())


def test_engines_are_chosen_by_the_setting_and_the_device():
    info = DataInfo(shape=(16,), kind="tokens", vocab_size=11, token_counts=[0] + [5] * 10)
    assert not Word2Vec(Word2VecConfig(engine="batched"), info).updates_itself()
    assert Word2Vec(Word2VecConfig(engine="compiled"), info).updates_itself()
    with pytest.raises(ConfigError, match="sparse applies to the batched engine only"):
        Word2Vec(Word2VecConfig(engine="compiled", sparse=True), info).updates_itself()
    meta = Word2Vec(Word2VecConfig(engine="compiled"), info).to("meta")
    with pytest.raises(ConfigError, match="engine=compiled runs on the CPU; on meta use"):
        meta.updates_itself()
    assert not Word2Vec(Word2VecConfig(), info).to("meta").updates_itself()


def small_corpus_config(tmp_path, **overrides):
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    corpus.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(300)))
    return configure(
        "word2vec",
        f"text:{corpus},seq_len=16,min_count=1",
        overrides={"train.steps": 6, "train.checkpoint_every": 100, "dim": 8, **overrides},
    )


def test_a_compiled_run_under_torchrun_is_refused_before_it_writes(tmp_path, monkeypatch):
    from replab.data import make_dataset
    from replab.training import loop

    cfg = small_corpus_config(tmp_path)
    monkeypatch.setattr(loop.dist, "world_size", lambda: 2)
    with pytest.raises(ConfigError, match="word2vec trains by its own update rule .* torchrun"):
        loop.train(cfg, make_dataset(cfg.data), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_compiled_run_on_one_thread_resumes_bit_for_bit(resume_is_exact, tmp_path):
    cfg = small_corpus_config(tmp_path, threads=1)
    straight, _ = resume_is_exact(cfg, stop=4)
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert lines and all('"pairs"' in line for line in lines)
    assert straight.model.in_vectors.weight.abs().max() > 1 / 8  # trained past its init
