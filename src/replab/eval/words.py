"""Word queries on a run's token vectors: nearest neighbours, analogies, similarity, and the
translation of one language's words into another's by a linear map (Procrustes + CSLS).

File formats (the standard ones, so users can bring theirs):

- analogies: word2vec's ``questions-words.txt`` (``: section`` lines, then ``a b c d`` lines);
- similarity: WordSim-353 TSV (``word1<TAB>word2<TAB>score``; ``#`` comments and a header line
  allowed);
- dictionaries: MUSE's, one ``source target`` pair a line (a source may have several targets).

Words missing from the vocabulary are skipped and counted (``oov``), as gensim does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replab.data.base import DataError
from replab.data.tokenizers import load_tokenizer
from replab.methods.capabilities import TokenVectors
from replab.run import load


@dataclass
class WordVectors:
    """Words (index = token id) and their vectors [V, dim]; id 0 (padding) is never returned."""

    words: list[str]
    vectors: np.ndarray
    tokenizer: object | None = None

    def __post_init__(self):
        self.vectors = np.asarray(self.vectors, dtype=np.float64)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.words):
            raise ValueError(f"{len(self.words)} words but vectors of shape {self.vectors.shape}")
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.where(norms > 0, norms, 1.0)
        self._index = {w: i for i, w in enumerate(self.words) if i != 0}

    def id(self, word: str) -> int | None:
        if self.tokenizer is not None:
            i = self.tokenizer.token_to_id(word)
            return None if i in (None, 0) else int(i)
        return self._index.get(word)

    def __contains__(self, word: str) -> bool:
        return self.id(word) is not None


def load_word_vectors(run_dir: str | Path) -> WordVectors:
    """A run's token vectors with its vocabulary (``RUN/tokenizer.json``), without the corpus."""
    tok = load_tokenizer(run_dir)
    run = load(run_dir, device="cpu")
    if not isinstance(run.model, TokenVectors):
        raise DataError(f"{run_dir}: method {run.config.method} has no token vectors")
    vectors = run.model.token_vectors().float().cpu().numpy()
    words = [tok.id_to_token(i) for i in range(tok.vocab_size)]
    if len(vectors) != len(words):
        raise DataError(f"{run_dir}: {len(vectors)} vectors but {len(words)} tokens")
    return WordVectors(words, vectors, tok)


# ------------------------------------------------------------------------------- neighbours


def nearest_neighbours(wv: WordVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The k words of highest cosine similarity to ``word`` (itself excluded)."""
    i = wv.id(word)
    if i is None:
        raise KeyError(f"{word!r} is not in the vocabulary")
    sims = wv.unit @ wv.unit[i]
    sims[[0, i]] = -np.inf
    top = np.argsort(-sims, kind="stable")[:k]
    return [(wv.words[j], float(sims[j])) for j in top]


# -------------------------------------------------------------------------------- analogies


def read_analogies(path: str | Path) -> list[tuple[str, list[str]]]:
    """questions-words.txt -> [(section, [a, b, c, d])]."""
    path = Path(path)
    out, section = [], ""
    for n, line in enumerate(_read_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataError(f"{path}: line {n}: expected 4 words 'a b c d', got {len(parts)}")
        out.append((section, parts))
    if not out:
        raise DataError(f"{path}: no analogy questions")
    return out


def analogy_accuracy(wv: WordVectors, questions, restrict: int | None = None) -> dict:
    """3CosAdd (Mikolov et al., 2013): for a : b :: c : ?, the answer is the word (not a, b or c)
    maximising cos(x, b - a + c) with unit vectors, i.e. cos(x,b) - cos(x,a) + cos(x,c) up to
    a common scale. Accuracy over the questions whose four words are all known; ``restrict``
    searches only the ``restrict`` first (most frequent) ids, like gensim's restrict_vocab.
    Returns {"accuracy", "correct", "total", "oov", "sections": {name: accuracy}}."""
    limit = len(wv.words) if restrict is None else min(restrict, len(wv.words))
    rows, sections = [], []
    oov = 0
    for section, words in questions:
        ids = [wv.id(w) for w in words]
        if any(i is None or i >= limit for i in ids):
            oov += 1
            continue
        rows.append(ids)
        sections.append(section)
    if not rows:
        return {"accuracy": float("nan"), "correct": 0, "total": 0, "oov": oov, "sections": {}}
    ids = np.asarray(rows)
    unit = wv.unit[:limit]
    correct = np.zeros(len(ids), dtype=bool)
    for s in range(0, len(ids), 1024):
        q = ids[s : s + 1024]
        target = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]
        sims = target @ unit.T
        sims[:, 0] = -np.inf
        np.put_along_axis(sims, q[:, :3], -np.inf, axis=1)
        correct[s : s + 1024] = sims.argmax(1) == q[:, 3]
    per = {}
    for name in dict.fromkeys(sections):
        mask = np.asarray([sec == name for sec in sections])
        per[name] = float(correct[mask].mean())
    return {
        "accuracy": float(correct.mean()),
        "correct": int(correct.sum()),
        "total": int(len(ids)),
        "oov": oov,
        "sections": per,
    }


# ------------------------------------------------------------------------------- similarity


def read_similarity(path: str | Path) -> list[tuple[str, str, float]]:
    """WordSim-353 TSV -> [(word1, word2, score)]; '#' lines and a first-line header skipped."""
    path = Path(path)
    out = []
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            raise DataError(f"{path}: line {n}: expected 'word1<TAB>word2<TAB>score'")
        try:
            score = float(parts[2])
        except ValueError:
            if not out:  # a header line
                continue
            raise DataError(f"{path}: line {n}: score {parts[2]!r} is not a number") from None
        out.append((parts[0].strip(), parts[1].strip(), score))
    if not out:
        raise DataError(f"{path}: no word pairs")
    return out


def similarity_correlation(wv: WordVectors, pairs) -> dict:
    """Spearman rank correlation between cosine similarities and human scores over the pairs
    with both words known. Returns {"spearman", "pearson", "pairs", "oov"}."""
    from scipy.stats import pearsonr, spearmanr

    model, human, oov = [], [], 0
    for a, b, score in pairs:
        ia, ib = wv.id(a), wv.id(b)
        if ia is None or ib is None:
            oov += 1
            continue
        model.append(float(wv.unit[ia] @ wv.unit[ib]))
        human.append(score)
    if len(model) < 2:
        nan = float("nan")
        return {"spearman": nan, "pearson": nan, "pairs": len(model), "oov": oov}
    return {
        "spearman": float(spearmanr(model, human).statistic),
        "pearson": float(pearsonr(model, human).statistic),
        "pairs": len(model),
        "oov": oov,
    }


# ------------------------------------------------------------------------------ translation


def read_dictionary(path: str | Path) -> list[tuple[str, str]]:
    """MUSE dictionary: one 'source target' pair per line (whitespace-separated)."""
    path = Path(path)
    out = []
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(
                f"{path}: line {n}: expected 'source target', got {len(parts)} field(s)"
            )
        out.append((parts[0], parts[1]))
    if not out:
        raise DataError(f"{path}: no word pairs")
    return out


def normalize(x: np.ndarray) -> np.ndarray:
    """Unit length, mean-centred, unit length again (Artetxe et al., 2018): the usual
    preprocessing before an orthogonal map."""

    def unit(v):
        n = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(n > 0, n, 1.0)

    x = unit(np.asarray(x, dtype=np.float64))
    return unit(x - x.mean(0, keepdims=True))


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The orthogonal W minimising ||x W^T - y||_F (Schoenemann, 1966): W = U V^T where
    U S V^T = svd(y^T x). Rows of x and y are paired (source, target) vectors."""
    u, _, vt = np.linalg.svd(np.asarray(y).T @ np.asarray(x))
    return u @ vt


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def mean_topk_similarity(queries: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """r(q) = mean cosine of q to its k most similar keys (CSLS's hubness penalty)."""
    sims = _unit_rows(queries) @ _unit_rows(keys).T
    k = min(k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(1)


def retrieve(
    mapped: np.ndarray, targets: np.ndarray, method: str = "csls", k: int = 10
) -> np.ndarray:
    """Scores [n_queries, n_targets] for retrieval: cosine ("nn"), or CSLS (Conneau et al.,
    2018): CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y), r_T(x) the mean cosine of x to its k
    nearest targets, r_S(y) that of y to its k nearest mapped sources (``mapped`` holds all
    mapped source words, so r_S is computed over the whole source vocabulary)."""
    cos = _unit_rows(mapped) @ _unit_rows(targets).T
    if method == "nn":
        return cos
    if method != "csls":
        raise ValueError(f"method must be 'nn' or 'csls', got {method!r}")
    r_t = mean_topk_similarity(mapped, targets, k)
    r_s = mean_topk_similarity(targets, mapped, k)
    return 2 * cos - r_t[:, None] - r_s[None, :]


def _pairs_to_ids(src: WordVectors, tgt: WordVectors, pairs):
    found, missing = [], 0
    for a, b in pairs:
        ia, ib = src.id(a), tgt.id(b)
        if ia is None or ib is None:
            missing += 1
        else:
            found.append((ia, ib))
    return found, missing


def translation_precision(
    src_vecs: np.ndarray,
    tgt_vecs: np.ndarray,
    pairs: list[tuple[int, int]],
    w: np.ndarray,
    *,
    method: str = "csls",
    k: int = 10,
    ks=(1, 5),
) -> dict[str, float]:
    """precision@k of translating each distinct source id of ``pairs`` (all its gold targets
    count as correct) by retrieval among all target ids >= 1 after mapping x -> W x."""
    mapped = src_vecs[1:] @ w.T  # every source word (id >= 1)
    gold: dict[int, set[int]] = {}
    for a, b in pairs:
        gold.setdefault(a, set()).add(b)
    queries = np.asarray(sorted(gold))
    scores = retrieve(mapped, tgt_vecs[1:], method, k)[queries - 1]
    top = np.argsort(-scores, axis=1, kind="stable")[:, : max(ks)] + 1
    out = {}
    for kk in ks:
        hits = [bool(gold[q] & set(top[i, :kk].tolist())) for i, q in enumerate(queries)]
        out[f"p@{kk}"] = float(np.mean(hits))
    return out


def align(
    src: WordVectors,
    tgt: WordVectors,
    train_pairs: list[tuple[str, str]],
    test_pairs: list[tuple[str, str]] | None = None,
    *,
    k: int = 10,
    refine: int = 0,
) -> dict:
    """Fit an orthogonal map from ``src``'s space to ``tgt``'s on the seed pairs (vectors
    normalised first), and report precision@1/@5 by nearest neighbour and by CSLS on the test
    pairs (the seed pairs when none are given), source->target and target->source (W^T).

    ``refine`` > 0 rounds of MUSE's Procrustes refinement (Conneau et al., 2018): the pairs
    that are mutual CSLS nearest neighbours under the current map, with the seeds, fit the
    next map. It uses no test labels.
    """
    if src.vectors.shape[1] != tgt.vectors.shape[1]:
        raise ValueError(
            f"the two spaces differ in dimension: {src.vectors.shape[1]} vs {tgt.vectors.shape[1]}"
        )
    train, train_missing = _pairs_to_ids(src, tgt, train_pairs)
    if len(train) < 2:
        raise ValueError(
            f"only {len(train)} seed pair(s) have both words in the vocabularies; need >= 2"
        )
    test_pairs = train_pairs if test_pairs is None else test_pairs
    test, test_missing = _pairs_to_ids(src, tgt, test_pairs)
    if not test:
        raise ValueError("no test pair has both words in the vocabularies")
    xs, ys = normalize(src.vectors[1:]), normalize(tgt.vectors[1:])
    xs = np.vstack([np.zeros((1, xs.shape[1])), xs])  # keep ids: row 0 is padding
    ys = np.vstack([np.zeros((1, ys.shape[1])), ys])
    fit_pairs = sorted(set(train))
    for _ in range(refine + 1):
        a, b = np.asarray(fit_pairs).T
        w = procrustes(xs[a], ys[b])
        scores = retrieve(xs[1:] @ w.T, ys[1:], "csls", k)
        fwd, bwd = scores.argmax(1), scores.argmax(0)
        mutual = {(i + 1, int(j) + 1) for i, j in enumerate(fwd) if bwd[j] == i}
        fit_pairs = sorted(mutual | set(train))
    reverse = [(j, i) for i, j in test]
    result = {
        "seed_pairs": len(train),
        "seed_pairs_missing": train_missing,
        "test_pairs": len(test),
        "test_pairs_missing": test_missing,
        "test_is_seed": test_pairs is train_pairs,
        "refine": refine,
        "chance_p@1": {
            "source_to_target": 1.0 / (len(tgt.words) - 1),
            "target_to_source": 1.0 / (len(src.words) - 1),
        },
    }
    for method in ("nn", "csls"):
        result[method] = {
            "source_to_target": translation_precision(xs, ys, test, w, method=method, k=k),
            "target_to_source": translation_precision(ys, xs, reverse, w.T, method=method, k=k),
        }
    return result


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
