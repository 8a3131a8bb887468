"""word2vec: sub-sampling and noise probabilities, the skip-gram windows, the loss, a run."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from word2vec_topics import assert_topics_separate, topic_corpus

from replab.config import ConfigError
from replab.data.base import DataInfo
from replab.methods import configure
from replab.methods.word2vec import (
    Word2Vec,
    Word2VecConfig,
    cbow_windows,
    close_up,
    keep_probabilities,
    noise_distribution,
    skipgram_pairs,
)

COUNTS = (0, 5000, 1000, 200, 50, 10, 0, 3)  # id 0 padding, id 6 never seen


def make(counts=COUNTS, **kw):
    info = DataInfo(shape=(16,), kind="tokens", vocab_size=len(counts), token_counts=counts)
    return Word2Vec(Word2VecConfig(**kw), info)


def test_keep_probability_is_word2vecs_formula():
    t = 1e-3
    total = sum(COUNTS)
    expected = [
        0.0 if c == 0 else min(1.0, math.sqrt(t / (c / total)) + t / (c / total)) for c in COUNTS
    ]
    got = keep_probabilities(torch.tensor(COUNTS), t)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    assert got[1] < 0.1 and got[5] == 1.0  # frequent words are thinned, rare ones kept
    assert keep_probabilities(torch.tensor(COUNTS), 0.0).tolist() == [1.0] * len(COUNTS)


def test_subsampling_keeps_each_word_at_its_probability():
    torch.manual_seed(0)
    model = make(sample=0.05)
    x = torch.tensor([1, 2, 3, 4] * 4).repeat(5000, 1)  # 20,000 occurrences of each word
    kept = model.subsample(x)
    n = 20000
    for w in (1, 2, 3, 4):
        p = float(model.keep_prob[w])
        rate = (kept == w).sum().item() / n
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9, (w, rate, p)


def test_noise_distribution_is_unigram_to_the_three_quarters():
    expected = np.asarray(COUNTS, dtype=float) ** 0.75
    expected /= expected.sum()
    got = noise_distribution(torch.tensor(COUNTS), 0.75)
    assert got.tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    torch.manual_seed(1)
    model = make()
    draws = model._negatives(40000).flatten()  # 200,000 noise words
    freq = torch.bincount(draws, minlength=len(COUNTS)).double() / len(draws)
    sd = np.sqrt(expected * (1 - expected) / len(draws))
    assert np.all(np.abs(freq.numpy() - expected) <= 4 * sd + 1e-12)
    assert freq[0] == 0 and freq[6] == 0


def brute_force_pairs(x, reach):
    pairs = []
    for row, r in zip(x.tolist(), reach.tolist(), strict=True):
        for j, c in enumerate(row):
            for k, o in enumerate(row):
                if c and o and j != k and abs(j - k) <= r[j]:
                    pairs.append((c, o))
    return Counter(pairs)


def test_skipgram_pairs_come_from_each_centres_shrunk_window():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 50, (20, 12), generator=g)
    x[3, 7:] = 0  # a padded row
    reach = torch.randint(1, 6, x.shape, generator=g)
    centres, contexts = skipgram_pairs(x, reach)
    assert Counter(zip(centres.tolist(), contexts.tolist(), strict=True)) == brute_force_pairs(
        x, reach
    )


def test_close_up_keeps_order_and_pads():
    x = torch.tensor([[5, 6, 7, 8, 0], [1, 2, 3, 4, 9]])
    keep = torch.tensor([[True, False, True, True, True], [False] * 4 + [True]])
    assert close_up(x, keep).tolist() == [[5, 7, 8, 0, 0], [9, 0, 0, 0, 0]]


def test_cbow_windows_match_the_skipgram_contexts():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(1, 30, (6, 10), generator=g)
    x[0, 6:] = 0
    reach = torch.randint(1, 4, x.shape, generator=g)
    centres, ctx, mask = cbow_windows(x, reach, 3)
    got = Counter(
        (int(c), int(o)) for c, row, m in zip(centres, ctx, mask, strict=True) for o in row[m]
    )
    assert got == brute_force_pairs(x, reach)


def test_loss_at_initialisation_is_log2_per_term():
    torch.manual_seed(0)
    model = make(sample=0.0, negatives=5)  # output vectors start at zero: sigma(0) = 1/2
    x = torch.tensor([[1, 2, 3, 4, 5, 7, 1, 2]])
    torch.manual_seed(5)
    out = model.loss({"x": x}, 0)
    pairs = int(out["pairs"])
    assert pairs > 0
    # each pair: -log sigma(0) for the context and for every noise word unequal to it
    assert float(out["loss"].detach()) == pytest.approx(float(out["loss_per_pair"]), rel=1e-6)
    summed = make(sample=0.0, negatives=5, reduction="sum")
    summed.load_state_dict(model.state_dict())
    torch.manual_seed(5)  # the same windows and noise words
    assert float(summed.loss({"x": x}, 0)["loss"].detach()) == pytest.approx(
        float(out["loss_per_pair"]) * pairs, rel=1e-5
    )
    assert math.log(2) * 1 <= float(out["loss_per_pair"]) <= math.log(2) * 6 + 1e-6


def test_sparse_gradients_touch_only_the_batch_rows():
    torch.manual_seed(0)
    model = make(sample=0.0, sparse=True)
    model.loss({"x": torch.tensor([[3, 4, 5, 3]])}, 0)["loss"].backward()
    g = model.in_vectors.weight.grad
    assert g.is_sparse
    assert set(g.coalesce().indices()[0].tolist()) <= {3, 4, 5}


def test_encode_averages_the_word_vectors_of_the_real_tokens():
    model = make()
    x = torch.tensor([[1, 2, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]])
    w = model.in_vectors.weight.detach()
    z = model.encode(x)
    assert torch.allclose(z[0], (w[1] + w[2]) / 2) and torch.allclose(z[1], w[3])
    assert torch.all(z[2] == 0) and z.shape == (3, 100)


def test_needs_token_data():
    with pytest.raises(ConfigError, match="word2vec needs token data"):
        Word2Vec(Word2VecConfig(), DataInfo(shape=(1, 8, 8)))


def test_published_defaults():
    cfg = configure("word2vec", "bilingual_a")
    m, t = cfg.model, cfg.train
    assert (m.dim, m.window, m.negatives, m.ns_exponent, m.sample) == (100, 5, 5, 0.75, 1e-3)
    assert (m.engine, m.alpha) == ("auto", 0.025)  # word2vec.c's -alpha
    assert (t.schedule, t.min_lr_ratio, t.order) == ("linear", 1e-4, "in_order")


def test_learns_which_words_share_contexts():
    """Two disjoint 'topics': words co-occur only within their topic."""
    x, info = topic_corpus()
    torch.manual_seed(0)
    model = Word2Vec(Word2VecConfig(dim=10, sample=0.0), info)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for step in range(25):
        opt.zero_grad()
        model.loss({"x": x[(step % 5) * 80 : (step % 5 + 1) * 80]}, step)["loss"].backward()
        opt.step()
    assert_topics_separate(model.token_vectors())


def test_encode_refuses_ids_outside_the_vocabulary():
    from replab.data.base import DataError

    with pytest.raises(DataError, match="token id 9 outside the model's vocabulary of 8"):
        make().encode(torch.tensor([[1, 9]]))


@pytest.mark.slow  # the protocol's probes: about a minute on a busy 2-core machine
def test_the_protocol_probes_a_word2vec_run_on_the_speaker_task(tmp_path):
    """Train on the play's text, evaluate on who-speaks-this-line through encode alone."""
    import json

    from typer.testing import CliRunner

    from replab.cli import app

    rng = np.random.default_rng(0)
    blocks = []
    for i in range(120):  # ANNA only says a-words, BORIS only b-words
        who, letter = ("ANNA", "a") if i % 2 else ("BORIS", "b")
        line = " ".join(f"{letter}{k}" for k in rng.integers(0, 8, 6))
        blocks.append(f"{who}:\n{line}\n")
    play = tmp_path / "play.txt"
    play.write_text("\n".join(blocks))
    runner = CliRunner()
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "word2vec", "--data", f"text:{play},seq_len=8", "--steps",
                            "3", "--out", str(run), "-q", "dim=8"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["eval", str(run), "--data", f"speakers:{play},seq_len=8",
                            "--suite", "quick"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    result = json.loads((run / "eval.json").read_text())
    assert result["representation_dim"] == 8
    assert set(result["baselines"]) == {"bag_of_words", "random_encoder"}
    assert result["baselines"]["bag_of_words"]["1.0"]["mean"] == 1.0  # disjoint vocabularies
    r = runner.invoke(app, ["eval", str(run), "--data", f"speakers:{play},seq_len=8,tokenizer=bpe",
                            "--suite", "quick"])  # fmt: skip
    assert r.exit_code == 2 and "outside the model's vocabulary" in r.stderr


def test_cbow_predicts_each_centre_once():
    torch.manual_seed(0)
    model = make(sample=0.0, architecture="cbow")
    x = torch.tensor([[1, 2, 3, 4, 5, 7, 1, 2]])
    out = model.loss({"x": x}, 0)
    assert int(out["pairs"]) == 8  # every real token is a centre with some context
    assert math.log(2) <= float(out["loss"].detach()) <= 6 * math.log(2) + 1e-6
    out["loss"].backward()
    # output vectors start at zero, so only they move on the first step (as in word2vec.c)
    assert model.out_vectors.weight.grad[[1, 2, 3, 4, 5, 7]].abs().sum() > 0


def test_vectors_start_as_gensims():
    torch.manual_seed(0)
    model = make(dim=50)
    w = model.in_vectors.weight.detach()
    assert w.abs().max() <= 1 / 50 and w.abs().max() > 0.9 / 50  # uniform in +-1/dim
    assert torch.all(model.out_vectors.weight == 0)
