"""A look at a word space: the nearest neighbours of the data's most frequent words.

For models with one vector per token (``TokenVectors``) trained on token data: the first thing a
user of word2vec asks of it, beside the probes. Translation between two runs' spaces is
``replab align`` (``eval.words``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replab.data.tokens import TokenDataset
from replab.eval.context import Context
from replab.eval.parts.base import Part
from replab.eval.results import PartResult, Table, number
from replab.eval.words import WordVectors, nearest_neighbours
from replab.methods.capabilities import TokenVectors

WORDS = 10  # the most frequent words queried
NEIGHBOURS = 5


@dataclass
class WordQueriesResult(PartResult):
    key = "word_queries"
    neighbours: dict[str, list[tuple[str, float]]]  # word -> [(neighbour, cosine)], nearest first

    def to_json(self):
        return {w: [[n, s] for n, s in near] for w, near in self.neighbours.items()}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError(f"expected {{word: neighbours}}, got {type(obj).__name__}")
        return cls(
            {
                str(w): [(str(p[0]), number(p[1])) for p in near if isinstance(p, list | tuple)]
                for w, near in obj.items()
                if isinstance(near, list)
            }
        )

    def tables(self):
        rows = [
            [w, ", ".join(f"{n} ({s:.2f})" for n, s in near)] for w, near in self.neighbours.items()
        ]
        title = "Nearest neighbours of the most frequent words (cosine)"
        return [Table(title, ["word", "neighbours"], rows)]


class WordQueries(Part):
    name = "word_queries"
    result_type = WordQueriesResult

    def applies(self, model, data):
        return isinstance(model, TokenVectors) and isinstance(data, TokenDataset)

    def run(self, ctx: Context) -> WordQueriesResult:
        data: TokenDataset = ctx.data
        tok = data.tokenizer
        vectors = ctx.model.token_vectors().float().cpu().numpy()[: tok.vocab_size]
        words = [tok.id_to_token(i) for i in range(len(vectors))]
        space = WordVectors(words, vectors, tok)
        counts = np.asarray(data.info.token_counts or [0] * len(vectors))[: len(vectors)]
        counts[0] = 0  # padding
        frequent = [int(i) for i in np.argsort(-counts, kind="stable")[:WORDS] if counts[i] > 0]
        return WordQueriesResult(
            {words[i]: nearest_neighbours(space, words[i], NEIGHBOURS) for i in frequent}
        )
