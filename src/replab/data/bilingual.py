"""Two invented languages describing one shared world, with their true dictionary.

``bilingual_a`` (SVO, articles, prepositions) and ``bilingual_b`` (SOV, other words, case
particles, postpositions) render their own samples of one world, so the corpora are comparable
but not parallel: the lecture's example of word spaces that align by a linear map. Each run
directory gets the true a-b dictionary in MUSE's format (whole, a 30% seed part and the rest),
for ``replab align``: 60 seed pairs; with 20 (10%), the orthogonal map of 100-d spaces was
too loosely fitted for any translation to show (P@1 under 0.1 for replab and gensim alike,
``bench_word2vec``). Tokenised by words (min_count 5) in chunks of 64.
"""

from __future__ import annotations

import numpy as np

from replab.data.tokenizers import encode_stream, train_tokenizer
from replab.data.tokens import TokenDataset, chunk_stream
from replab.registry import register_dataset

BILINGUAL_SIZES = {"noun": 120, "adjective": 40, "verb": 30, "preposition": 10}
BILINGUAL_SENTENCES = 50_000
BILINGUAL_SEED_FRACTION = 0.3


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
    tok = train_tokenizer(text, "word", min_count=5, vocab_size=0)
    x = chunk_stream(encode_stream(tok, text), 64)
    return TokenDataset(x, tok, name=f"bilingual_{lang}", extra_files=dictionary_files())


@register_dataset("bilingual_a")
def bilingual_a() -> TokenDataset:
    """Procedural language a (SVO) describing a shared world; writes the true a-b dictionary."""
    return _bilingual_dataset("a")


@register_dataset("bilingual_b")
def bilingual_b() -> TokenDataset:
    """Procedural language b (SOV, other words) describing the same world as bilingual_a."""
    return _bilingual_dataset("b")
