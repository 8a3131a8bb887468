"""Token data: rows of token ids with their tokeniser, the shape every text data set takes.

Every example is ``{"x": int64 [seq_len]}`` (``"y"`` too for labelled data), id 0 is padding, and
``DataInfo(kind="tokens", vocab_size=V, shape=(seq_len,), token_counts=...)`` carries the counts
of each id in the training split (for unigram statistics). The raw-input baseline is a bag of
words. A run trained on token data keeps its tokeniser (``tokenizer.json``) beside its weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from replab.data.base import DataError, DataInfo, InMemoryDataset
from replab.data.tokenizers import PAD, TOKENIZER_FILE
from replab.files import atomic_write_text


def check_token_ids(x, vocab_size: int, who: str) -> None:
    """Refuse ids the model has no embedding for (data tokenised with another vocabulary)."""
    if x.numel() and (int(x.max()) >= vocab_size or int(x.min()) < 0):
        raise DataError(
            f"{who}: token id {int(x.max())} outside the model's vocabulary of {vocab_size}; "
            "was the data tokenised as for training (same tokenizer, min_count, vocab_size)?"
        )


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
