"""BERT (Devlin et al., 2019): masked-token prediction plus a sentence-order task.

Each training row (a chunk of consecutive text) is cut at a random point into two consecutive
segments A and B; half the time they are swapped. The input is ``[CLS] first [SEP] second [SEP]``
with segment embeddings, and the loss is

``L = L_MLM + sop_weight * L_SOP``

- ``L_MLM``: cross-entropy of the original token at the selected positions: each real token is
  selected with probability 0.15, and a selected token is replaced by ``[MASK]`` (80%), a random
  token (10%) or left unchanged (10%);
- ``L_SOP``: cross-entropy of "are A and B in their original order" from the pooled output
  ``tanh(W h_[CLS] + b)`` (the sentence-order prediction of ALBERT, Lan et al., 2020, which
  replaced BERT's next-sentence task; the lecture's "are two consecutive sentences in order").

The representation is the pooled output of ``[CLS] x [SEP]``. Sizes are BERT-Tiny's (Turc et
al., 2019: 2 layers, 128 wide, 2 heads); BERT-base is 12 x 768. Optimiser: BERT's AdamW with
weight decay 0.01, warm-up and linear decay, at lr 1e-3 for short budgets (BERT: 1e-4 over 1M
steps). ``[CLS]``, ``[SEP]`` and ``[MASK]`` are ids appended after the data's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.data.tokens import check_token_ids
from replab.methods.base import Method
from replab.methods.capabilities import Encoder, TokenVectors
from replab.methods.inputs import Tokens
from replab.nn.transformer import Transformer
from replab.registry import register_method

PAD = 0

BERT_TRAIN_DEFAULTS = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "betas": [0.9, 0.999],
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_steps": 100,
    "schedule": "linear",
    "min_lr_ratio": 0.0,
    "grad_clip": 1.0,
}


@dataclass
class BERTConfig:
    """BERT-Tiny (Turc et al., 2019) with BERT's masking (Devlin et al., 2019)."""

    n_layer: int = param(2, min=1)
    n_head: int = param(2, min=1)
    dim: int = param(128, min=1)
    dropout: float = param(0.1, min=0.0, max=1.0)
    mask_prob: float = param(0.15, min=0.0, max=1.0, help="share of tokens to predict")
    sop_weight: float = param(1.0, min=0.0, help="weight of the sentence-order loss")

    def check(self):
        if self.dim % self.n_head:
            raise ValueError(f"dim: {self.dim} is not divisible by n_head {self.n_head}")


def segment_pair(x: torch.Tensor, cut: torch.Tensor, swap: torch.Tensor, cls: int, sep: int):
    """Rows x [B, L] (real tokens first, then padding), cut points 1 <= cut < length and swap
    flags -> (ids, segment types) [B, L + 3] of ``[CLS] A [SEP] B [SEP]`` with A = x[:cut],
    B = x[cut:length], or ``[CLS] B [SEP] A [SEP]`` where ``swap``; padding after."""
    b, length = x.shape
    n = (x != PAD).sum(1, keepdim=True)  # real tokens per row
    cut = cut.view(b, 1)
    swap = swap.view(b, 1).bool()
    first_len = torch.where(swap, n - cut, cut)
    first_start = torch.where(swap, cut, torch.zeros_like(cut))
    second_start = torch.where(swap, torch.zeros_like(cut), cut)
    p = torch.arange(length + 3, device=x.device)[None]  # output positions
    in_first = (p >= 1) & (p <= first_len)
    in_second = (p >= first_len + 2) & (p <= n + 1)
    src = torch.where(in_first, first_start + p - 1, second_start + p - first_len - 2)
    tokens = torch.gather(x, 1, src.clamp(0, length - 1))
    ids = torch.where(in_first | in_second, tokens, torch.zeros_like(tokens))
    ids = torch.where(p == 0, torch.full_like(ids, cls), ids)
    ids = torch.where((p == first_len + 1) | (p == n + 2), torch.full_like(ids, sep), ids)
    types = ((p >= first_len + 2) & (p <= n + 2)).long()
    return ids, types


def mask_tokens(ids: torch.Tensor, maskable: torch.Tensor, prob: float, mask_id: int, vocab: int):
    """BERT's corruption: each maskable position is selected with probability ``prob``; of the
    selected, 80% -> ``mask_id``, 10% -> a random id in 1..vocab-1, 10% unchanged.
    Returns (corrupted ids, selected mask)."""
    selected = maskable & (torch.rand(ids.shape, device=ids.device) < prob)
    u = torch.rand(ids.shape, device=ids.device)
    random_ids = torch.randint(1, vocab, ids.shape, device=ids.device)
    out = torch.where(selected & (u < 0.8), torch.full_like(ids, mask_id), ids)
    out = torch.where(selected & (u >= 0.8) & (u < 0.9), random_ids, out)
    return out, selected


@register_method("bert", pillar="pretext")
class BERT(Method, Encoder, TokenVectors):
    """BERT (Devlin et al., 2019): masked tokens + sentence order; representation = pooled."""

    Config = BERTConfig
    accepts = Tokens()
    train_defaults = BERT_TRAIN_DEFAULTS

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        v = info.vocab_size
        self.vocab = v
        self.cls_id, self.sep_id, self.mask_id = v, v + 1, v + 2
        self.transformer = Transformer(
            v + 3,
            int(info.shape[0]) + 3,
            cfg.dim,
            cfg.n_layer,
            cfg.n_head,
            dropout=cfg.dropout,
            n_token_types=2,
        )
        d = cfg.dim
        self.mlm_transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.mlm_bias = nn.Parameter(torch.zeros(v + 3))
        self.pooler = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.sop_head = nn.Linear(d, 2)

    def _mlm_logits(self, h):
        return self.mlm_transform(h) @ self.transformer.tok_emb.weight.T + self.mlm_bias

    def loss(self, batch, step):
        x = batch["x"]
        b = len(x)
        n = (x != PAD).sum(1)
        if bool((n < 2).any()):
            raise ValueError("bert needs at least two tokens per training row")
        cut = 1 + (torch.rand(b, device=x.device) * (n - 1)).long()
        swap = torch.rand(b, device=x.device) < 0.5
        ids, types = segment_pair(x, cut, swap, self.cls_id, self.sep_id)
        maskable = (ids != PAD) & (ids < self.vocab)
        corrupted, selected = mask_tokens(
            ids, maskable, self.cfg.mask_prob, self.mask_id, self.vocab
        )
        h = self.transformer(corrupted, pad_mask=ids != PAD, token_types=types)
        logits = self._mlm_logits(h[selected])
        targets = ids[selected]
        mlm = F.cross_entropy(logits, targets) if len(targets) else h.sum() * 0.0
        sop_logits = self.sop_head(self.pooler(h[:, 0]))
        sop = F.cross_entropy(sop_logits, swap.long())
        with torch.no_grad():
            mlm_acc = (logits.argmax(-1) == targets).float().mean() if len(targets) else mlm
            sop_acc = (sop_logits.argmax(-1) == swap.long()).float().mean()
        return {
            "loss": mlm + self.cfg.sop_weight * sop,
            "mlm_loss": mlm.detach(),
            "sop_loss": sop.detach(),
            "mlm_accuracy": mlm_acc,
            "sop_accuracy": sop_acc,
        }

    def encode(self, x):
        """Pooled output tanh(W h_[CLS] + b) of ``[CLS] x [SEP]`` (padding masked)."""
        check_token_ids(x, self.vocab, "bert")
        b, length = x.shape
        n = (x != PAD).sum(1, keepdim=True)
        ids = torch.cat([torch.full_like(x[:, :1], self.cls_id), x, torch.zeros_like(x[:, :1])], 1)
        p = torch.arange(length + 2, device=x.device)[None]
        ids = torch.where(p == n + 1, torch.full_like(ids, self.sep_id), ids)
        h = self.transformer(ids, pad_mask=ids != PAD, token_types=torch.zeros_like(ids))
        return self.pooler(h[:, 0])

    def token_vectors(self) -> torch.Tensor:
        """The input token embeddings of the data's vocabulary [vocab_size, dim]."""
        return self.transformer.tok_emb.weight[: self.vocab].detach()
