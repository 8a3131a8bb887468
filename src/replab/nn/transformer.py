"""A compact pre-LayerNorm transformer on ``F.scaled_dot_product_attention``, shared by ``gpt``
(causal) and ``bert`` (bidirectional, with segment embeddings).

GPT-2's layout (Radford et al., 2019): token + learned position embeddings, blocks of
``x + attn(LN(x))`` then ``x + MLP(LN(x))`` (MLP: 4x width, GELU), a final LayerNorm; weights
N(0, 0.02), the residual output projections N(0, 0.02 / sqrt(2 * depth)). Pre-LN trains stably
without the long warm-up post-LN BERT needs, which matters on short CPU budgets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x, attn_mask=None, causal: bool = False):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and attn_mask is None,
        )
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x, attn_mask=None, causal: bool = False):
        x = x + self.attn(self.ln1(x), attn_mask, causal)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """ids [B, T] -> hidden states [B, T, dim] (after the final LayerNorm).

    ``pad_mask`` [B, T] (True = a real token) hides padding keys from every query;
    ``token_types`` [B, T] in 0..n_token_types-1 adds segment embeddings (BERT).
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        dim: int,
        depth: int,
        heads: int,
        *,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        causal: bool = False,
        n_token_types: int = 0,
    ):
        super().__init__()
        self.causal, self.max_len = causal, max_len
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.type_emb = nn.Embedding(n_token_types, dim) if n_token_types else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * depth))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, ids, pad_mask=None, token_types=None):
        b, t = ids.shape
        if t > self.max_len:
            raise ValueError(f"sequence of {t} tokens is longer than max_len {self.max_len}")
        pos = torch.arange(t, device=ids.device)
        h = self.tok_emb(ids) + self.pos_emb(pos)[None]
        if self.type_emb is not None and token_types is not None:
            h = h + self.type_emb(token_types)
        h = self.drop(h)
        attn_mask = None
        if pad_mask is not None:
            attn_mask = pad_mask[:, None, None, :].bool()  # [B, 1, 1, T] keys
            if self.causal:
                tri = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
                # a query always sees itself, so no row is fully masked
                attn_mask = (attn_mask & tri) | torch.eye(t, dtype=torch.bool, device=ids.device)
        for block in self.blocks:
            h = block(h, attn_mask, self.causal)
        return self.ln_f(h)
