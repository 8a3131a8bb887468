"""Tokenisers: pure functions of a corpus and its options, saved with a run as ``tokenizer.json``.

- ``word`` (word2vec's): lower-case, words are maximal runs of letters and digits with internal
  apostrophes (``know't``, ``we'll``); words seen fewer than ``min_count`` times in the corpus
  are dropped, as word2vec drops them; ids 1.. in order of decreasing count (ties by word).
- ``bpe``: byte-level BPE trained on the corpus by Hugging Face ``tokenizers`` (lossless, so
  bits per character can be computed); ``vocab_size`` merges and bytes, ``<pad>`` is id 0.

Both are pure functions of the corpus and the options, so ``text:`` and ``speakers:`` on the same
file share ids, and a run's ``tokenizer.json`` rebuilds them without the corpus.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from replab.data.base import DataError

PAD = 0
TOKENIZER_FILE = "tokenizer.json"
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


class WordTokenizer:
    """Lower-cased words with a minimum count; id 0 is padding, rarer words are dropped."""

    kind = "word"

    def __init__(self, words: list[str], counts: list[int], min_count: int):
        self.words = ["<pad>", *words]
        self.counts = [0, *counts]
        self.min_count = min_count
        self._ids = {w: i for i, w in enumerate(self.words)}
        self._ids.pop("<pad>")

    @classmethod
    def train(cls, text: str, min_count: int = 5) -> WordTokenizer:
        counts = Counter(WORD_RE.findall(text.lower()))
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(kept, [counts[w] for w in kept], min_count)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def token_to_id(self, token: str) -> int | None:
        return self._ids.get(token.lower())

    def id_to_token(self, i: int) -> str:
        return self.words[i]

    def encode(self, text: str) -> np.ndarray:
        ids = self._ids
        return np.fromiter(
            (ids[w] for w in WORD_RE.findall(text.lower()) if w in ids), dtype=np.int64
        )

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(t) for t in texts]

    def decode(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids if int(i) != PAD)

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": "replab-words",
                "lowercase": True,
                "pattern": WORD_RE.pattern,
                "min_count": self.min_count,
                "words": self.words[1:],
                "counts": self.counts[1:],
            }
        )


class BPETokenizer:
    """Byte-level BPE (Hugging Face ``tokenizers``) with ``<pad>`` as id 0."""

    kind = "bpe"

    def __init__(self, tok):
        self.tok = tok

    @classmethod
    def train(cls, text: str, vocab_size: int = 2048) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=["<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # one "sentence" per line keeps training deterministic and fast
        tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    def id_to_token(self, i: int) -> str:
        return self.tok.id_to_token(int(i))

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tok.encode(text).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tok.encode_batch(texts)]

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids if int(i) != PAD])

    def token_bytes(self) -> np.ndarray:
        """Length in bytes of each token's text (for bits per character)."""
        out = np.zeros(self.vocab_size, dtype=np.int64)
        for i in range(1, self.vocab_size):
            out[i] = len(self.tok.decode([i]).encode("utf-8"))
        return out

    def to_json(self) -> str:
        return self.tok.to_str()


def tokenizer_from_json(text: str, where: str = "tokenizer") -> WordTokenizer | BPETokenizer:
    """Rebuild a tokeniser saved by ``to_json`` (a run's ``tokenizer.json``)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if isinstance(obj, dict) and obj.get("type") == "replab-words":
        try:
            return WordTokenizer(list(obj["words"]), list(obj["counts"]), int(obj["min_count"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: malformed word vocabulary") from None
    from tokenizers import Tokenizer

    try:
        return BPETokenizer(Tokenizer.from_str(text))
    except Exception:  # noqa: BLE001 - the library raises its own exception type
        raise DataError(
            f"{where}: neither a replab word vocabulary nor a tokenizers file"
        ) from None


def load_tokenizer(run_dir: str | Path) -> WordTokenizer | BPETokenizer:
    """The tokeniser a run was trained with (``RUN/tokenizer.json``)."""
    path = Path(run_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no {TOKENIZER_FILE} (the run was not trained on text data)")
    return tokenizer_from_json(path.read_text(encoding="utf-8"), str(path))


def train_tokenizer(text: str, kind: str, min_count: int, vocab_size: int):
    """The ``kind`` tokeniser of ``text``; DataError when no word is frequent enough."""
    tok = (
        WordTokenizer.train(text, min_count)
        if kind == "word"
        else BPETokenizer.train(text, vocab_size)
    )
    if tok.vocab_size < 2:
        raise DataError(f"no word occurs at least min_count={min_count} times; lower min_count")
    return tok


def encode_stream(tok, text: str) -> np.ndarray:
    """The whole text as one stream of ids (BPE line by line, which keeps it fast)."""
    lines = text.splitlines(keepends=True)
    parts = tok.encode_batch(lines) if tok.kind == "bpe" else [tok.encode(text)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
