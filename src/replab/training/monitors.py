"""Training monitors: is the representation learning, or collapsing? Logged with the loss.

Every ``train.monitor_every`` steps the loop encodes two fixed slices of the data (eval mode, no
gradient) and logs, to ``metrics.jsonl`` and so to the report's curves:

- ``monitor_knn``: the accuracy of a k-nearest-neighbour vote (k 20, cosine) of held-out
  examples (test split) among a labelled slice of training examples, where labels exist: the
  cheap online probe solo-learn and DINO log;
- ``monitor_std``: the mean over dimensions of the per-dimension standard deviation of the
  L2-normalised codes (BYOL's and SimSiam's collapse check: 0 when every input maps to one
  code, about 1/sqrt(dim) when the codes spread over the sphere);
- ``monitor_rank``: RankMe (Garrido et al. 2023), exp of the entropy of the normalised
  singular values of the codes, the effective number of dimensions in use.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from replab.data.base import Dataset
from replab.methods.capabilities import Encoder, encode_in_batches, model_encoder

MEMORY = 512  # labelled training examples the kNN vote searches
QUERIES = 256  # held-out examples it classifies
K = 20


def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    """exp(-sum p_k log p_k), p = singular values / their sum (+ eps, as the paper)."""
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def normalized_std(z: torch.Tensor) -> float:
    """Mean per-dimension std of the L2-normalised codes: 0 for a collapsed encoder."""
    return float(F.normalize(z.double(), dim=1).std(0, unbiased=False).mean())


def knn_accuracy(memory, memory_y, queries, queries_y, k: int = K) -> float:
    """Majority vote (ties to the smallest label) of the k most cosine-similar memory codes."""
    sim = F.normalize(queries.double(), dim=1) @ F.normalize(memory.double(), dim=1).T
    nearest = sim.topk(min(k, len(memory)), dim=1).indices
    votes = memory_y[nearest]
    classes = int(max(memory_y.max(), queries_y.max())) + 1
    counts = torch.zeros(len(queries), classes, dtype=torch.long)
    counts.scatter_add_(1, votes, torch.ones_like(votes))
    return float((counts.argmax(1) == queries_y).double().mean())


class Monitors:
    """The fixed slices (the first ``MEMORY`` training and ``QUERIES`` test examples of a seeded
    draw) and the figures of a model's codes of them."""

    def __init__(self, data: Dataset, seed: int):
        rng = np.random.default_rng([seed, 7])
        train, test = data.split("train"), data.split("test")
        memory = train.get_batch(np.sort(rng.permutation(len(train))[:MEMORY]))
        queries = test.get_batch(np.sort(rng.permutation(len(test))[:QUERIES]))
        self.memory_x, self.queries_x = memory["x"], queries["x"]
        self.memory_y, self.queries_y = memory.get("y"), queries.get("y")

    def __call__(self, model: Encoder) -> dict[str, float]:
        was_training = model.training
        try:
            encode = model_encoder(model)
            with torch.no_grad():
                memory = torch.from_numpy(encode_in_batches(encode, [self.memory_x]))
                queries = torch.from_numpy(encode_in_batches(encode, [self.queries_x]))
        finally:
            model.train(was_training)
        out = {"monitor_std": normalized_std(memory), "monitor_rank": rankme(memory)}
        if self.memory_y is not None:
            out["monitor_knn"] = knn_accuracy(memory, self.memory_y, queries, self.queries_y)
        return out
