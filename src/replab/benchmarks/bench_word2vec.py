"""word2vec throughput and quality on tinyshakespeare: replab's against gensim's, same run.

Both train skip-gram with negative sampling on the same sentences (the training chunks of
``text:input.txt``: lower-cased words, min_count 5, 64-word chunks) with the same settings
(dimension 100, window 5, 5 negatives, ns_exponent 0.75, sample 1e-3, the same epochs), then
answer the same questions: a small hand-made Shakespeare analogy set in the questions-words
format (3CosAdd) and the nearest neighbours of common words. Throughput is corpus words per
second of training wall time (before sub-sampling), as gensim counts "raw words".

gensim is optional (``pip install -e '.[bench]'``); without it only replab is measured.
``replab bench --suite word2vec`` (from the repository root) or ``python -m
replab.benchmarks.bench_word2vec --corpus PATH --epochs 3``.
"""

from __future__ import annotations

import argparse
import itertools
import json
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
    setting = (
        f"word2vec: {Path(r['corpus']).name}, {r['corpus_words']:,} words, {r['epochs']} epochs, "
        f"{r['threads']} threads"
    )

    def figures(side: dict) -> str:
        return (
            f"{side['words_per_s']:,.0f} words/s, analogy "
            f"{side['analogy_correct']}/{side['analogy_total']}"
        )

    theirs = r.get("gensim")
    beside = f"gensim {theirs['version']}: {figures(theirs)}" if isinstance(theirs, dict) else ""
    if "replab_over_gensim_words_per_s" in r:
        beside += f" (replab {r['replab_over_gensim_words_per_s']:.2f}x)"
    return [(setting, figures(r["replab"]), beside)]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--epochs", type=int, default=5, help="word2vec's default is 5")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from replab.data import make_dataset
    from replab.eval.words import WordVectors, load_word_vectors, read_analogies
    from replab.methods import configure
    from replab.methods.word2vec import WORD2VEC_TRAIN_DEFAULTS
    from replab.training.loop import train

    if not args.corpus.is_file():
        result = {"skipped": f"no corpus at {args.corpus}"}
        print(json.dumps(result))
        return result
    torch.set_num_threads(args.threads)
    spec = f"text:{args.corpus}"
    data = make_dataset(spec)
    train_split = data.split("train")
    chunks = train_split.get_batch(np.arange(len(train_split)))["x"].numpy()
    words = int((chunks != 0).sum())
    batch = WORD2VEC_TRAIN_DEFAULTS["batch_size"]
    steps = int(np.ceil(args.epochs * len(train_split) / batch))
    result = {
        "corpus": str(args.corpus),
        "corpus_words": words,
        "vocabulary": data.info.vocab_size - 1,
        "epochs": args.epochs,
        "threads": args.threads,
        "settings": "skip-gram, dim 100, window 5, 5 negatives, ns_exponent 0.75, sample 1e-3",
    }
    with tempfile.TemporaryDirectory(prefix="bench-word2vec-") as tmp:
        questions = read_analogies(analogy_file(Path(tmp) / "questions-shakespeare.txt"))
        start = time.perf_counter()
        overrides = {
            "train.steps": steps,
            "train.seed": args.seed,
            "train.log_every": max(1, steps // 10),
        }
        train(
            configure("word2vec", spec, overrides=overrides),
            data,
            Path(tmp) / "run",
            progress=False,
        )
        seconds = time.perf_counter() - start
        ours = load_word_vectors(Path(tmp) / "run")
        result["replab"] = {
            "steps": steps,
            "batch_chunks": batch,
            "train_seconds": seconds,
            "words_per_s": args.epochs * words / seconds,
            **scores(ours, questions),
        }
        try:
            from gensim.models import Word2Vec as GensimWord2Vec
        except ImportError:
            result["gensim"] = "not installed (pip install -e '.[bench]')"
        else:
            tok = data.tokenizer
            sentences = [[tok.id_to_token(int(i)) for i in row if i] for row in chunks]
            model = GensimWord2Vec(
                vector_size=100, window=5, negative=5, ns_exponent=0.75, sample=1e-3,
                min_count=1, sg=1, hs=0, alpha=0.025, min_alpha=0.0001, seed=args.seed,
                workers=args.threads,
            )  # fmt: skip
            model.build_vocab(sentences)
            start = time.perf_counter()
            model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
            g_seconds = time.perf_counter() - start
            vocab = ["<pad>", *model.wv.index_to_key]
            vectors = np.vstack([np.zeros((1, 100)), model.wv.vectors])
            theirs = WordVectors(vocab, vectors)
            import gensim

            result["gensim"] = {
                "version": gensim.__version__,
                "train_seconds": g_seconds,
                "words_per_s": args.epochs * words / g_seconds,
                **scores(theirs, questions),
            }
            result["replab_over_gensim_words_per_s"] = (
                result["replab"]["words_per_s"] / result["gensim"]["words_per_s"]
            )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
