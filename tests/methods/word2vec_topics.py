"""The two-topic corpus both word2vec engines are tested on, and what learning it means."""

import numpy as np
import torch

from replab.data.base import DataInfo


def topic_corpus() -> tuple[torch.Tensor, DataInfo]:
    """400 rows of 16 ids: words 1-5 co-occur only with each other, 6-10 likewise."""
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 6, 16) if i % 2 else rng.integers(6, 11, 16) for i in range(400)]
    counts = [0] + [int(sum((r == w).sum() for r in rows)) for w in range(1, 11)]
    info = DataInfo(shape=(16,), kind="tokens", vocab_size=11, token_counts=counts)
    return torch.as_tensor(np.stack(rows)), info


def assert_topics_separate(vectors: torch.Tensor) -> None:
    """Words of one topic are closer (cosine) to each other than to the other topic's, by 0.5."""
    v = torch.nn.functional.normalize(vectors[1:], dim=1)
    sim = v @ v.T
    same = torch.zeros(10, 10, dtype=torch.bool)
    same[:5, :5] = same[5:, 5:] = True
    off = ~torch.eye(10, dtype=torch.bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.5
