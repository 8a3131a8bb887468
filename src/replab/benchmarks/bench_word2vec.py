"""word2vec's speed and quality beside gensim's, same run: analogies and translation.

Both train skip-gram with negative sampling on the same sentences (a data set's training chunks:
lower-cased words, min_count 5, 64-word chunks) with the same settings (dimension 100, window
5, 5 negatives, ns_exponent 0.75, sample 1e-3, the same epochs and threads, the corpus read in
order), for several seeds each, then answer the same questions:

- on tinyshakespeare, a small hand-made analogy set in the questions-words format (3CosAdd)
  and the nearest neighbours of common words;
- on the two invented languages (``bilingual_a``, ``bilingual_b``), translation after
  ``replab align``'s orthogonal Procrustes on the 10% seed dictionary: P@1 on the other 90%, by
  nearest neighbour and by CSLS, a to b.

replab runs its default engine (the compiled per-pair SGD on a CPU) through its own training
loop, run directory included; one seed of the batched torch engine is measured beside it.
Throughput is corpus words per second of training wall time (before sub-sampling), as gensim
counts "raw words"; gensim's clock starts after its vocabulary is built, replab's covers the
whole ``train`` call. gensim is optional (``pip install -e '.[bench]'``); without it only
replab is measured.
``replab bench --suite word2vec`` (from the repository root) or ``python -m
replab.benchmarks.bench_word2vec --corpus PATH --epochs 3``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# the project's shared data folder, beside the repository (see the README); pass --corpus elsewhere
DEFAULT_CORPUS = Path("..") / "shared" / "data" / "tinyshakespeare" / "input.txt"
QUERY_WORDS = ["king", "love", "death", "lord", "good", "night", "eyes", "sweet"]

# (a, b) pairs that share one relation; every ordered couple of pairs makes a question.
ANALOGY_PAIRS = {
    "gender": [
        ("king", "queen"), ("lord", "lady"), ("father", "mother"), ("son", "daughter"),
        ("brother", "sister"), ("man", "woman"), ("husband", "wife"), ("duke", "duchess"),
        ("he", "she"), ("sir", "madam"), ("boy", "girl"), ("prince", "princess"),
    ],
    "possessive": [
        ("i", "my"), ("he", "his"), ("we", "our"), ("they", "their"), ("thou", "thy"),
        ("you", "your"),
    ],
    "past-tense": [
        ("come", "came"), ("give", "gave"), ("know", "knew"), ("take", "took"), ("see", "saw"),
        ("make", "made"), ("go", "went"), ("tell", "told"), ("think", "thought"),
        ("speak", "spoke"),
    ],
    "plural": [
        ("lord", "lords"), ("king", "kings"), ("friend", "friends"), ("eye", "eyes"),
        ("hand", "hands"), ("word", "words"), ("thing", "things"), ("man", "men"),
        ("heart", "hearts"), ("day", "days"),
    ],
}  # fmt: skip


def analogy_file(path: Path) -> Path:
    lines = []
    for section, pairs in ANALOGY_PAIRS.items():
        lines.append(f": {section}")
        for (a, b), (c, d) in itertools.permutations(pairs, 2):
            lines.append(f"{a} {b} {c} {d}")
    path.write_text("\n".join(lines) + "\n")
    return path


def scores(wv, questions) -> dict:
    from replab.eval.words import analogy_accuracy, nearest_neighbours

    acc = analogy_accuracy(wv, questions)
    return {
        "analogy_accuracy": acc["accuracy"],
        "analogy_correct": acc["correct"],
        "analogy_total": acc["total"],
        "analogy_sections": acc["sections"],
        "neighbours": {
            w: [n for n, _ in nearest_neighbours(wv, w, 5)] for w in QUERY_WORDS if w in wv
        },
    }


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    if "skipped" in r:
        return [("word2vec", r["skipped"], "")]
    rows = []
    for task in ("analogies", "translation"):
        t = r.get(task)
        if not isinstance(t, dict):
            continue
        setting = (
            f"word2vec {task}: {t['corpus']}, {t['corpus_words']:,} words, {r['epochs']} epochs, "
            f"{r['threads']} threads, {len(t['replab']['runs'])} seeds"
        )
        theirs = t.get("gensim")
        beside = f"gensim {r['gensim_version']}: {_figures(task, theirs)}" if theirs else ""
        if theirs:
            ratio = t["replab"]["words_per_s"] / theirs["words_per_s"]
            beside += f" (replab {ratio:.2f}x the words/s)"
        if "replab_batched" in t:
            beside += f"; replab's batched engine: {_figures(task, t['replab_batched'])}"
        rows.append((setting, _figures(task, t["replab"]), beside))
    return rows


def _figures(task: str, side: dict) -> str:
    if task == "analogies":
        quality = f"analogy {side['analogy_correct']:.1f}/{side['analogy_total']:.0f}"
    else:
        quality = f"P@1 {side['p@1_nn']:.3f} (NN) / {side['p@1_csls']:.3f} (CSLS)"
    return f"{side['words_per_s']:,.0f} words/s, {quality}"


def _sentences(data) -> tuple[list[list[str]], int]:
    """The training chunks as lists of words (what gensim reads), and their word count."""
    train_split = data.split("train")
    chunks = train_split.get_batch(np.arange(len(train_split)))["x"].numpy()
    tok = data.tokenizer
    sentences = [[tok.id_to_token(int(i)) for i in row if i] for row in chunks]
    return sentences, int((chunks != 0).sum())


def train_replab(spec, data, epochs, seed, out: Path, engine: str = "auto"):
    """(word vectors, seconds) of replab's word2vec, ``epochs`` passes over the training split."""
    from replab.eval.words import load_word_vectors
    from replab.methods import configure
    from replab.methods.word2vec import WORD2VEC_TRAIN_DEFAULTS
    from replab.training.loop import train

    steps = int(np.ceil(epochs * len(data.split("train")) / WORD2VEC_TRAIN_DEFAULTS["batch_size"]))
    overrides = {
        "train.steps": steps,
        "train.seed": seed,
        "train.log_every": max(1, steps // 10),
        "engine": engine,
    }
    cfg = configure("word2vec", spec, overrides=overrides)
    start = time.perf_counter()
    train(cfg, data, out, progress=False)
    return load_word_vectors(out), time.perf_counter() - start


def train_gensim(sentences, epochs, seed, threads):
    """(word vectors, seconds) of gensim's skip-gram with the same settings."""
    from gensim.models import Word2Vec as GensimWord2Vec

    from replab.eval.words import WordVectors

    model = GensimWord2Vec(
        vector_size=100, window=5, negative=5, ns_exponent=0.75, sample=1e-3, min_count=1,
        sg=1, hs=0, alpha=0.025, min_alpha=0.0001, seed=seed, workers=threads,
    )  # fmt: skip
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - start
    vocab = ["<pad>", *model.wv.index_to_key]
    return WordVectors(vocab, np.vstack([np.zeros((1, 100)), model.wv.vectors])), seconds


def _mean_of(runs: list[dict]) -> dict:
    """The runs' mean of every number, beside the runs themselves."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    out = {k: statistics.fmean(r[k] for r in runs) for k in keys}
    if len(runs) > 1:
        out.update({f"{k}_sd": statistics.stdev(r[k] for r in runs) for k in keys})
    return {**out, "runs": runs}


def analogies(corpus: Path, epochs, seeds, threads, tmp: Path, gensim: bool, batched: bool):
    from replab.data import make_dataset
    from replab.eval.words import read_analogies

    spec = f"text:{corpus}"
    data = make_dataset(spec)
    sentences, words = _sentences(data)
    questions = read_analogies(analogy_file(tmp / "questions-shakespeare.txt"))

    def measured(wv, seconds):
        return {"train_seconds": seconds, "words_per_s": epochs * words / seconds,
                **scores(wv, questions)}  # fmt: skip

    result = {"corpus": corpus.name, "corpus_words": words,
              "vocabulary": data.info.vocab_size - 1}  # fmt: skip
    ours = [measured(*train_replab(spec, data, epochs, s, tmp / f"shakespeare-{s}")) for s in seeds]
    result["replab"] = _mean_of(ours)
    if batched:
        run = train_replab(spec, data, epochs, seeds[0], tmp / "shakespeare-batched", "batched")
        result["replab_batched"] = measured(*run)
    if gensim:
        result["gensim"] = _mean_of(
            [measured(*train_gensim(sentences, epochs, s, threads)) for s in seeds]
        )
    return result


def translation(epochs, seeds, threads, tmp: Path, gensim: bool):
    from replab.data import make_dataset
    from replab.data.bilingual import dictionary_files
    from replab.eval.words import align, read_dictionary

    files = dictionary_files(seed_fraction=0.3)
    for name in ("dictionary.train.txt", "dictionary.test.txt"):
        (tmp / name).write_text(files[name])
    seed_pairs = read_dictionary(tmp / "dictionary.train.txt")
    test_pairs = read_dictionary(tmp / "dictionary.test.txt")
    languages = {lang: make_dataset(f"bilingual_{lang}") for lang in "ab"}
    text = {lang: _sentences(data) for lang, data in languages.items()}
    words = sum(n for _, n in text.values())

    def measured(pair):
        (wa, sa), (wb, sb) = pair
        aligned = align(wa, wb, seed_pairs, test_pairs)
        return {"train_seconds": sa + sb, "words_per_s": epochs * words / (sa + sb),
                "p@1_nn": aligned["nn"]["source_to_target"]["p@1"],
                "p@1_csls": aligned["csls"]["source_to_target"]["p@1"]}  # fmt: skip

    result = {"corpus": "bilingual_a + bilingual_b", "corpus_words": words,
              "seed_pairs": len(seed_pairs), "test_pairs": len(test_pairs)}  # fmt: skip
    result["replab"] = _mean_of([
        measured([train_replab(f"bilingual_{lang}", data, epochs, s, tmp / f"{lang}-{s}")
                  for lang, data in languages.items()])
        for s in seeds
    ])  # fmt: skip
    if gensim:
        result["gensim"] = _mean_of([
            measured([train_gensim(text[lang][0], epochs, s, threads) for lang in "ab"])
            for s in seeds
        ])  # fmt: skip
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--epochs", type=int, default=5, help="word2vec's default is 5")
    parser.add_argument("--seeds", type=int, default=5, help="runs of each side per task")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-batched", action="store_true", help="skip the batched engine")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    try:
        import gensim
    except ImportError:
        gensim = None
    seeds = list(range(args.seeds))
    result = {
        "epochs": args.epochs,
        "threads": args.threads,
        "settings": "skip-gram, dim 100, window 5, 5 negatives, ns_exponent 0.75, sample 1e-3",
        "gensim_version": gensim.__version__ if gensim else "not installed (.[bench])",
    }
    with tempfile.TemporaryDirectory(prefix="bench-word2vec-") as tmp:
        if args.corpus.is_file():
            result["analogies"] = analogies(
                args.corpus, args.epochs, seeds, args.threads, Path(tmp), gensim is not None,
                not args.no_batched,
            )  # fmt: skip
        else:
            result["analogies"] = f"skipped: no corpus at {args.corpus}"
        result["translation"] = translation(
            args.epochs, seeds, args.threads, Path(tmp), gensim is not None
        )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
