"""Text data: token sequences from a corpus, a labelled speaker task, and a procedural bilingual
corpus with its true dictionary.

Specs (options after the path, comma-separated ``key=value``)::

    text:PATH[,tokenizer=word|bpe][,seq_len=64][,min_count=5][,vocab_size=2048]
    speakers:PATH[,...the same...][,speakers=10][,unit=line|speech]
    bilingual_a, bilingual_b

Every example is ``{"x": int64 [seq_len]}`` (``"y"`` too for ``speakers``), id 0 is padding, and
``DataInfo(kind="tokens", vocab_size=V, shape=(seq_len,), token_counts=...)`` carries the counts
of each id in the training split (for unigram statistics).

Tokenisers, both pure functions of the corpus and the options (so ``text:`` and ``speakers:`` on
the same file share ids, and a run's ``tokenizer.json`` rebuilds them without the corpus):

- ``word`` (word2vec's): lower-case, words are maximal runs of letters and digits with internal
  apostrophes (``know't``, ``we'll``); words seen fewer than ``min_count`` times in the corpus
  are dropped, as word2vec drops them; ids 1.. in order of decreasing count (ties by word).
- ``bpe``: byte-level BPE trained on the corpus by Hugging Face ``tokenizers`` (lossless, so
  bits per character can be computed); ``vocab_size`` merges and bytes, ``<pad>`` is id 0.

A ``text:`` corpus is one token stream (files of a folder in sorted order) cut into consecutive
chunks of ``seq_len`` tokens; the deterministic 90/10 split is over chunks.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from replab.data.base import DataError, DataInfo, InMemoryDataset
from replab.registry import register_dataset

PAD = 0
TOKENIZER_FILE = "tokenizer.json"
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def check_token_ids(x, vocab_size: int, who: str) -> None:
    """Refuse ids the model has no embedding for (data tokenised with another vocabulary)."""
    if x.numel() and (int(x.max()) >= vocab_size or int(x.min()) < 0):
        raise DataError(
            f"{who}: token id {int(x.max())} outside the model's vocabulary of {vocab_size}; "
            "was the data tokenised as for training (same tokenizer, min_count, vocab_size)?"
        )


# ---------------------------------------------------------------------------------- tokenisers


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


# ------------------------------------------------------------------------------------ options

_DEFAULTS = {
    "tokenizer": "word",
    "seq_len": 64,
    "min_count": 5,
    "vocab_size": 2048,
    "speakers": 10,
    "unit": "line",
}
_INT_OPTIONS = {"seq_len": 2, "min_count": 1, "vocab_size": 260, "speakers": 2}
_CHOICES = {"tokenizer": ("word", "bpe"), "unit": ("line", "speech")}


def parse_options(arg: str, spec: str, allowed: tuple[str, ...]) -> tuple[Path, dict]:
    """``PATH,key=value,...`` -> (path, options with defaults); one-line DataError if bad."""
    parts = arg.split(",")
    opts: dict = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        key = key.strip()
        if key not in allowed:
            raise DataError(f"{spec}: unknown option {key!r}; valid: {', '.join(allowed)}")
        if key in _INT_OPTIONS:
            try:
                value = int(value)
            except ValueError:
                raise DataError(f"{spec}: option {key} must be an integer, got {value!r}") from None
            if value < _INT_OPTIONS[key]:
                raise DataError(f"{spec}: option {key} must be >= {_INT_OPTIONS[key]}, got {value}")
        elif value not in _CHOICES[key]:
            raise DataError(f"{spec}: option {key}={value!r}; choose from {_CHOICES[key]}")
        opts[key] = value
    path = ",".join(parts)
    if not path:
        raise DataError(f"{spec}: needs a path, e.g. '{spec}:corpus.txt'")
    return Path(path).expanduser(), {k: opts.get(k, _DEFAULTS[k]) for k in allowed}


def read_corpus(path: Path) -> str:
    """A UTF-8 file, or the regular files of a folder (recursively, sorted, hidden ones
    skipped) joined by blank lines."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"{path}: folder holds no files")
    else:
        files = [path]
    texts = []
    for f in files:
        try:
            texts.append(f.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"{f}: not UTF-8 text (bad byte at offset {e.start})") from None
        except OSError as e:
            raise DataError(f"{f}: cannot read ({e.strerror})") from None
    text = "\n\n".join(texts)
    if not text.strip():
        raise DataError(f"{path}: no text")
    return text


@functools.lru_cache(maxsize=8)
def _cached_tokenizer(text: str, kind: str, min_count: int, vocab_size: int):
    # in-process cache: the command line builds a data set more than once per command
    if kind == "word":
        return WordTokenizer.train(text, min_count)
    return BPETokenizer.train(text, vocab_size)


@functools.lru_cache(maxsize=8)
def _cached_stream(text: str, kind: str, min_count: int, vocab_size: int) -> np.ndarray:
    tok = _cached_tokenizer(text, kind, min_count, vocab_size)
    ids = _encode_stream(tok, text)
    ids.flags.writeable = False
    return ids


def build_tokenizer(text: str, opts: dict) -> WordTokenizer | BPETokenizer:
    tok = _cached_tokenizer(text, opts["tokenizer"], opts["min_count"], opts["vocab_size"])
    if tok.vocab_size < 2:
        raise DataError(
            f"no word occurs at least min_count={opts['min_count']} times; lower min_count"
        )
    return tok


# ------------------------------------------------------------------------------------ data sets


class TokenDataset(InMemoryDataset):
    """Rows of token ids [n, seq_len] (0-padded), optional labels; bag-of-words raw baseline."""

    raw_baseline_name = "bag_of_words"

    def __init__(
        self,
        x: np.ndarray,
        tokenizer,
        *,
        name: str,
        y=None,
        class_names=None,
        extra_files: dict[str, str] | None = None,
    ):
        self.x = torch.as_tensor(x, dtype=torch.long)
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.tokenizer = tokenizer
        self.name = name
        self.class_names = class_names
        self.extra_files = dict(extra_files or {})
        if len(self.x) < 2:
            raise DataError(
                f"{name}: too little text ({len(self.x)} example(s) of {self.x.shape[1]} tokens)"
            )
        v = tokenizer.vocab_size
        info = DataInfo(
            shape=(self.x.shape[1],),
            kind="tokens",
            vocab_size=v,
            num_classes=None if class_names is None else len(class_names),
        )
        self.info = info
        train_rows = self.x[torch.as_tensor(self.split("train").indices)]
        counts = torch.bincount(train_rows.flatten(), minlength=v)
        counts[PAD] = 0
        self.info = DataInfo(
            shape=info.shape,
            kind="tokens",
            vocab_size=v,
            num_classes=info.num_classes,
            token_counts=tuple(counts.tolist()),
        )

    def raw_features(self, x: torch.Tensor) -> np.ndarray:
        """Bag of words: how often each token id occurs in the row (padding not counted)."""
        counts = torch.zeros(len(x), self.info.vocab_size, dtype=torch.float32)
        counts.scatter_add_(1, x.long(), torch.ones(x.shape, dtype=torch.float32))
        counts[:, PAD] = 0
        return counts.numpy()

    def save_artifacts(self, run_dir: Path) -> None:
        from replab.train.io import atomic_write_text

        atomic_write_text(Path(run_dir) / TOKENIZER_FILE, self.tokenizer.to_json())
        for name, content in self.extra_files.items():
            atomic_write_text(Path(run_dir) / name, content)


def chunk_stream(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """Consecutive non-overlapping chunks [n, seq_len] of a token stream (the tail dropped)."""
    n = len(ids) // seq_len
    return ids[: n * seq_len].reshape(n, seq_len)


def pad_rows(rows: list[np.ndarray], seq_len: int) -> np.ndarray:
    """Rows truncated to seq_len and right-padded with 0."""
    out = np.zeros((len(rows), seq_len), dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[:seq_len]
        out[i, : len(r)] = r
    return out


def _encode_stream(tok, text: str) -> np.ndarray:
    lines = text.splitlines(keepends=True)
    parts = tok.encode_batch(lines) if tok.kind == "bpe" else [tok.encode(text)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@register_dataset("text", takes_argument=True)
def text_corpus(arg: str) -> TokenDataset:
    """A UTF-8 text file or folder as chunks of tokens: text:PATH[,tokenizer=word|bpe,...]."""
    path, opts = parse_options(arg, "text", ("tokenizer", "seq_len", "min_count", "vocab_size"))
    text = read_corpus(path)
    try:
        tok = build_tokenizer(text, opts)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    ids = _cached_stream(text, opts["tokenizer"], opts["min_count"], opts["vocab_size"])
    x = chunk_stream(np.array(ids), opts["seq_len"])
    return TokenDataset(x, tok, name=f"text:{path.name}")


# --------------------------------------------------------------------------------- speaker task

_SPEAKER_RE = re.compile(r"^([A-Z][A-Za-z' .-]*[A-Za-z.]):\s*$")


def parse_speeches(text: str) -> list[tuple[str, list[str]]]:
    """Play text in tinyshakespeare's layout (a ``NAME:`` line, the speech, a blank line) ->
    [(speaker, lines of the speech)], the name line removed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.strip("\n").splitlines() if ln.strip()]
        if len(lines) >= 2:
            m = _SPEAKER_RE.match(lines[0].strip())
            if m:
                out.append((m.group(1).strip(), [ln.strip() for ln in lines[1:]]))
    return out


@register_dataset("speakers", takes_argument=True)
def speakers(arg: str) -> TokenDataset:
    """Who speaks this line: a play's lines labelled by speaker (tinyshakespeare's layout)."""
    path, opts = parse_options(
        arg,
        "speakers",
        ("tokenizer", "seq_len", "min_count", "vocab_size", "speakers", "unit"),
    )
    text = read_corpus(path)
    speeches = parse_speeches(text)
    if not speeches:
        raise DataError(f"{path}: no speeches found (expected 'NAME:' lines followed by text)")
    if opts["unit"] == "line":
        examples = [(who, ln) for who, lines in speeches for ln in lines]
    else:
        examples = [(who, "\n".join(lines)) for who, lines in speeches]
    freq = Counter(who for who, _ in examples)
    top = sorted(freq, key=lambda w: (-freq[w], w))[: opts["speakers"]]
    if len(top) < 2:
        raise DataError(f"{path}: fewer than two speakers")
    label = {w: i for i, w in enumerate(top)}
    # the tokeniser of the whole file, exactly as text:PATH builds it
    tok = build_tokenizer(text, opts)
    chosen = [(who, t) for who, t in examples if who in label]
    rows = tok.encode_batch([t for _, t in chosen])
    keep = [i for i, r in enumerate(rows) if len(r)]
    x = pad_rows([rows[i] for i in keep], opts["seq_len"])
    y = np.asarray([label[chosen[i][0]] for i in keep])
    return TokenDataset(x, tok, name=f"speakers:{path.name}", y=y, class_names=top)


# ---------------------------------------------------------------------------- bilingual corpus

BILINGUAL_SIZES = {"noun": 120, "adjective": 40, "verb": 30, "preposition": 10}
BILINGUAL_SENTENCES = 50_000
BILINGUAL_SEED_FRACTION = 0.1


def _invent_words(n: int, consonants: str, vowels: str, rng: np.random.Generator) -> list[str]:
    """n distinct invented words of 2-3 consonant-vowel syllables."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        k = rng.integers(2, 4)
        w = "".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(k))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class World:
    """The shared world both languages describe: which things have which attributes, who does
    what to what, where. Each word has its own preferences (Dirichlet draws), so its contexts
    are unique to it and the same in both languages up to the renaming."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        s = BILINGUAL_SIZES
        self.sizes = s
        ranks = rng.permutation(s["noun"])
        self.p_noun = 1.0 / (ranks + 2.0)  # Zipf-like frequencies
        self.p_noun /= self.p_noun.sum()
        self.p_adj = rng.dirichlet(np.full(s["adjective"], 0.2), size=s["noun"])
        self.p_verb = rng.dirichlet(np.full(s["verb"], 0.2), size=s["noun"])
        self.p_obj = rng.dirichlet(np.full(s["noun"], 0.1), size=s["verb"])
        self.p_prep = rng.dirichlet(np.full(s["preposition"], 0.3), size=s["verb"])
        self.p_place = rng.dirichlet(np.full(s["noun"], 0.1), size=s["preposition"])

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n sentence meanings: subject, verb, object, their adjectives (-1 none), place."""

        def draw(table: np.ndarray, parent: np.ndarray) -> np.ndarray:
            """One draw from row ``parent[i]`` of ``table`` for every i."""
            out = np.empty(len(parent), dtype=np.int64)
            for k in np.unique(parent):
                rows = np.flatnonzero(parent == k)
                out[rows] = rng.choice(table.shape[1], size=len(rows), p=table[k])
            return out

        subj = rng.choice(len(self.p_noun), size=n, p=self.p_noun)
        verb = draw(self.p_verb, subj)
        obj = draw(self.p_obj, verb)
        subj_adj = np.where(rng.random(n) < 0.4, draw(self.p_adj, subj), -1)
        obj_adj = np.where(rng.random(n) < 0.4, draw(self.p_adj, obj), -1)
        prep = np.where(rng.random(n) < 0.3, draw(self.p_prep, verb), -1)
        place = draw(self.p_place, np.maximum(prep, 0))
        return {
            "subj": subj,
            "verb": verb,
            "obj": obj,
            "subj_adj": subj_adj,
            "obj_adj": obj_adj,
            "prep": prep,
            "place": place,
        }


class Language:
    """A rendering of the world: its own words and word order."""

    def __init__(self, name: str, consonants: str, vowels: str, seed: int):
        rng = np.random.default_rng(seed)
        total = sum(BILINGUAL_SIZES.values())
        words = _invent_words(total + 3, consonants, vowels, rng)
        self.name = name
        self.lexicon: dict[str, list[str]] = {}
        start = 0
        for pos, n in BILINGUAL_SIZES.items():
            self.lexicon[pos] = words[start : start + n]
            start += n
        self.function = words[start:]  # articles or case particles, not in the dictionary

    def render(self, m: dict[str, np.ndarray]) -> str:
        lx, fn = self.lexicon, self.function
        noun, adj, verb, prep = lx["noun"], lx["adjective"], lx["verb"], lx["preposition"]
        cols = {k: v.tolist() for k, v in m.items()}
        out = []
        for s, v, o, sa, oa, p, pl in zip(
            cols["subj"],
            cols["verb"],
            cols["obj"],
            cols["subj_adj"],
            cols["obj_adj"],
            cols["prep"],
            cols["place"],
            strict=True,
        ):
            if self.name == "a":  # SVO, article + adjective before the noun, prepositions
                words = [fn[0], adj[sa], noun[s], verb[v], fn[1], adj[oa], noun[o]]
                if sa < 0:
                    words[1] = ""
                if oa < 0:
                    words[5] = ""
                if p >= 0:
                    words += [prep[p], fn[0], noun[pl]]
            else:  # SOV, adjective after the noun, case particles, postpositions
                words = [noun[s], adj[sa], fn[0], noun[o], adj[oa], fn[1]]
                if sa < 0:
                    words[1] = ""
                if oa < 0:
                    words[4] = ""
                if p >= 0:
                    words += [noun[pl], prep[p]]
                words.append(verb[v])
            out.append(" ".join(w for w in words if w))
        return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=1)
def _bilingual() -> tuple[World, dict[str, Language]]:
    world = World(seed=0)
    langs = {"a": Language("a", "ptkbdgmn", "aiu", seed=1), "b": Language("b", "lrsfvzh", "eoy", 2)}
    return world, langs


def bilingual_dictionary() -> list[tuple[str, str]]:
    """The true word-to-word dictionary from language a to language b (content words)."""
    _, langs = _bilingual()
    return [
        (wa, wb)
        for pos in BILINGUAL_SIZES
        for wa, wb in zip(langs["a"].lexicon[pos], langs["b"].lexicon[pos], strict=True)
    ]


@functools.lru_cache(maxsize=2)
def bilingual_text(lang: str, n_sentences: int = BILINGUAL_SENTENCES) -> str:
    """Language ``lang``'s corpus: its own sample of the world (the corpora are comparable, not
    parallel: no sentence of one is a translation of a sentence of the other)."""
    world, langs = _bilingual()
    rng = np.random.default_rng({"a": 11, "b": 12}[lang])
    return langs[lang].render(world.sample(n_sentences, rng))


def dictionary_files(seed_fraction: float = BILINGUAL_SEED_FRACTION, seed: int = 0) -> dict:
    """MUSE-format files: the whole dictionary, a ``seed_fraction`` training part and the rest."""
    pairs = bilingual_dictionary()
    perm = np.random.default_rng(seed).permutation(len(pairs))
    n_train = max(1, int(round(seed_fraction * len(pairs))))

    def lines(idx):
        return "".join(f"{pairs[i][0]} {pairs[i][1]}\n" for i in sorted(idx))

    return {
        "dictionary.txt": lines(range(len(pairs))),
        "dictionary.train.txt": lines(perm[:n_train]),
        "dictionary.test.txt": lines(perm[n_train:]),
    }


def _bilingual_dataset(lang: str) -> TokenDataset:
    text = bilingual_text(lang)
    tok = build_tokenizer(text, {**_DEFAULTS, "tokenizer": "word"})
    ids = _cached_stream(text, "word", _DEFAULTS["min_count"], _DEFAULTS["vocab_size"])
    x = chunk_stream(np.array(ids), _DEFAULTS["seq_len"])
    return TokenDataset(x, tok, name=f"bilingual_{lang}", extra_files=dictionary_files())


@register_dataset("bilingual_a")
def bilingual_a() -> TokenDataset:
    """Procedural language a (SVO) describing a shared world; writes the true a-b dictionary."""
    return _bilingual_dataset("a")


@register_dataset("bilingual_b")
def bilingual_b() -> TokenDataset:
    """Procedural language b (SOV, other words) describing the same world as bilingual_a."""
    return _bilingual_dataset("b")
