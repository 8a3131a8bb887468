"""Word queries and translation: neighbours, 3CosAdd, Spearman, Procrustes, CSLS, align CLI."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from replab.cli import app
from replab.data.base import DataError
from replab.eval import words as W

WORDS = ["<pad>", "king", "queen", "man", "woman", "apple", "pear"]


def toy_vectors():
    # king = royal + male, queen = royal + female, ...: king - man + woman = queen exactly
    royal, male, female, fruit, red = np.eye(5)
    vecs = [np.zeros(5), royal + male, royal + female, male, female, fruit + red, fruit]
    return W.WordVectors(WORDS, np.asarray(vecs))


def test_nearest_neighbours_by_cosine():
    wv = toy_vectors()
    nn = W.nearest_neighbours(wv, "apple", k=2)
    assert nn[0] == ("pear", pytest.approx(1 / np.sqrt(2)))
    assert "apple" not in [w for w, _ in W.nearest_neighbours(wv, "apple", k=6)]
    with pytest.raises(KeyError):
        W.nearest_neighbours(wv, "dragon")


def test_analogies_3cosadd_in_the_questions_words_format(tmp_path):
    f = tmp_path / "questions-words.txt"
    f.write_text(
        ": royalty\nman woman king queen\nking queen man woman\n"
        ": fruit\napple pear king dragon\nman king woman apple\n"
    )
    questions = W.read_analogies(f)
    assert [s for s, _ in questions] == ["royalty", "royalty", "fruit", "fruit"]
    r = W.analogy_accuracy(toy_vectors(), questions)
    assert r["oov"] == 1 and r["total"] == 3  # 'dragon' is unknown
    assert r["correct"] == 2 and r["sections"] == {"royalty": 1.0, "fruit": 0.0}
    (tmp_path / "bad.txt").write_text("a b c\n")
    with pytest.raises(DataError, match="line 1: expected 4 words"):
        W.read_analogies(tmp_path / "bad.txt")


def test_similarity_spearman_in_the_wordsim_format(tmp_path):
    f = tmp_path / "ws.tsv"
    f.write_text(
        "# comment\nWord 1\tWord 2\tHuman (mean)\nking\tqueen\t8.5\n"
        "king\tapple\t1.0\napple\tpear\t9.0\nman\twoman\t7.0\nman\tdragon\t3\n"
    )
    pairs = W.read_similarity(f)
    assert len(pairs) == 5
    wv = toy_vectors()
    r = W.similarity_correlation(wv, pairs)
    assert r["pairs"] == 4 and r["oov"] == 1
    cos = [float(wv.unit[wv.id(a)] @ wv.unit[wv.id(b)]) for a, b, _ in pairs[:4]]
    assert r["spearman"] == pytest.approx(spearmanr(cos, [8.5, 1.0, 9.0, 7.0]).statistic)
    f.write_text("king\tqueen\t8\nking\tapple\tlow\n")
    with pytest.raises(DataError, match="line 2: score 'low' is not a number"):
        W.read_similarity(f)


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    x = rng.normal(size=(30, 8))
    w = W.procrustes(x, x @ q.T)
    assert np.allclose(w, q, atol=1e-10)
    assert np.allclose(w @ w.T, np.eye(8), atol=1e-10)


def test_csls_matches_its_definition():
    rng = np.random.default_rng(1)
    src, tgt = rng.normal(size=(7, 4)), rng.normal(size=(9, 4))
    k = 3
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    cos = unit(src) @ unit(tgt).T
    r_t = np.array([np.mean(sorted(row)[-k:]) for row in cos])
    r_s = np.array([np.mean(sorted(col)[-k:]) for col in cos.T])
    expected = 2 * cos - r_t[:, None] - r_s[None, :]
    assert np.allclose(W.retrieve(src, tgt, "csls", k), expected)
    assert np.allclose(W.retrieve(src, tgt, "nn"), cos)


def test_align_translates_a_rotated_noisy_copy():
    rng = np.random.default_rng(2)
    n, d = 300, 20
    x = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    y = x @ q.T + 0.05 * rng.normal(size=(n, d))
    perm = rng.permutation(n)  # the target language lists its words in another order
    src = W.WordVectors(["<pad>"] + [f"s{i}" for i in range(n)], np.vstack([np.zeros(d), x]))
    tgt_words = ["<pad>"] + [f"t{perm[j]}" for j in range(n)]
    tgt = W.WordVectors(tgt_words, np.vstack([np.zeros(d), y[perm]]))
    pairs = [(f"s{i}", f"t{i}") for i in range(n)]
    r = W.align(src, tgt, pairs[:30], pairs[30:] + [("s1", "nope")])
    assert r["seed_pairs"] == 30 and r["test_pairs"] == n - 30 and r["test_pairs_missing"] == 1
    for method in ("nn", "csls"):
        for direction in ("source_to_target", "target_to_source"):
            assert r[method][direction]["p@1"] > 0.95
    refined = W.align(src, tgt, pairs[:30], pairs[30:], refine=2)
    assert refined["refine"] == 2 and refined["csls"]["source_to_target"]["p@1"] > 0.95
    with pytest.raises(ValueError, match="need >= 2"):
        W.align(src, tgt, [("s1", "t1")], pairs)


def test_read_dictionary_muse_format(tmp_path):
    f = tmp_path / "d.txt"
    f.write_text("a b\n\nc d\n")
    assert W.read_dictionary(f) == [("a", "b"), ("c", "d")]
    f.write_text("a b\nc d e\n")
    with pytest.raises(DataError, match="line 2: expected 'source target', got 3 field"):
        W.read_dictionary(f)
    with pytest.raises(DataError, match="no such file"):
        W.read_dictionary(tmp_path / "missing.txt")


# ------------------------------------------------------------------------ the align command

runner = CliRunner()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny word2vec runs on a text file (a few steps: only the plumbing is tested)."""
    import replab

    root = tmp_path_factory.mktemp("align")
    corpus = root / "c.txt"
    rng = np.random.default_rng(0)
    corpus.write_text(" ".join(f"w{i}" for i in rng.integers(0, 30, 3000)))
    runs = []
    for name in ("a", "b"):
        replab.train("word2vec", f"text:{corpus},seq_len=16", out=str(root / name), steps=3, dim=8)
        runs.append(root / name)
    corpus.unlink()  # the runs must work without their corpus
    (root / "seeds.txt").write_text("".join(f"w{i} w{i}\n" for i in range(10)))
    (root / "test.txt").write_text("".join(f"w{i} w{i}\n" for i in range(10, 30)))
    return root, runs


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_align_command_reports_both_directions(two_runs):
    root, (a, b) = two_runs
    code, out, err = invoke(
        "align",
        a,
        b,
        "--dict",
        root / "seeds.txt",
        "--test",
        root / "test.txt",
        "--json",
        root / "r.json",
        "--refine",
        1,
    )
    assert code == 0, err
    assert "csls" in out and "b -> a" in out and "P@1" in out
    r = json.loads((root / "r.json").read_text())
    assert r["seed_pairs"] == 10 and r["test_pairs"] == 20 and r["refine"] == 1
    assert set(r["csls"]) == {"source_to_target", "target_to_source"}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root / "missing.txt", "missing.txt: no such file"),
        (lambda root: _write(root / "bad.txt", "w1 w1 w2\n"), "expected 'source target'"),
        (lambda root: _write(root / "oov.txt", "zz yy\nw1 w1\n"), "only 1 seed pair"),
    ],
)
def test_align_bad_dictionary_exits_2_with_one_line(two_runs, make, message):
    root, (a, b) = two_runs
    code, _, err = invoke("align", a, b, "--dict", make(root))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_align_needs_two_runs(two_runs, tmp_path):
    root, (a, _) = two_runs
    code, _, err = invoke("align", a, tmp_path, "--dict", root / "seeds.txt")
    assert code == 2 and "tokenizer.json" in err


def _write(path, text):
    path.write_text(text)
    return path
