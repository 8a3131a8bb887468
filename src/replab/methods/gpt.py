"""GPT (Radford et al., 2018): a causal transformer language model as a representation learner.

Loss, the next-token cross-entropy over the chunk (padding targets ignored):
``L = -1/N sum_{i,t} log p(x_{i,t+1} | x_{i,<=t})`` in nats; ``bits_per_token = L / ln 2``.

The representation is the mean of the last hidden states over a row's real tokens. Sizes and
optimiser follow nanoGPT's CPU recipe for Shakespeare (Karpathy, nanoGPT README: 4 layers,
4 heads, 128 wide, dropout 0, batch 12, AdamW lr 1e-3 with betas (0.9, 0.99), weight decay 0.1,
100 warm-up steps, cosine decay to lr/10, clipping at 1); GPT-1 itself is 12 x 768 with 512
tokens of context, far beyond a CPU budget. Token embedding and output layer are tied (GPT-2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from replab.config import param
from replab.data.tokens import check_token_ids
from replab.methods.base import Method
from replab.methods.capabilities import Encoder, TokenVectors
from replab.methods.inputs import Tokens
from replab.nn.transformer import Transformer
from replab.registry import register_method

PAD = 0

GPT_TRAIN_DEFAULTS = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "betas": [0.9, 0.99],
    "weight_decay": 0.1,
    "batch_size": 12,
    "warmup_steps": 100,
    "schedule": "cosine",
    "min_lr_ratio": 0.1,
    "grad_clip": 1.0,
}


@dataclass
class GPTConfig:
    """nanoGPT's CPU-sized GPT (see the module docstring; GPT-1: 12 layers, 12 heads, 768)."""

    n_layer: int = param(4, min=1)
    n_head: int = param(4, min=1)
    n_embd: int = param(128, min=1)
    dropout: float = param(0.0, min=0.0, max=1.0)

    def check(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd: {self.n_embd} is not divisible by n_head {self.n_head}")


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed nats, number of targets) of the non-padding targets."""
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    real = targets.flatten() != PAD
    return (nll * real).sum(), real.sum()


@register_method("gpt", pillar="generative")
class GPT(Method, Encoder, TokenVectors):
    """GPT (Radford et al., 2018): causal transformer LM; representation = mean hidden state."""

    Config = GPTConfig
    accepts = Tokens()
    train_defaults = GPT_TRAIN_DEFAULTS

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.context = int(info.shape[0])
        self.transformer = Transformer(
            info.vocab_size,
            self.context,
            cfg.n_embd,
            cfg.n_layer,
            cfg.n_head,
            dropout=cfg.dropout,
            causal=True,
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.transformer(x)
        return h @ self.transformer.tok_emb.weight.T  # tied output layer

    def loss(self, batch, step):
        x = batch["x"]
        total, n = token_nll(self.logits(x[:, :-1]), x[:, 1:])
        loss = total / n.clamp_min(1)
        return {"loss": loss, "bits_per_token": loss.detach() / math.log(2)}

    @torch.no_grad()
    def nll(self, x: torch.Tensor) -> tuple[float, int]:
        """(summed nats, number of predicted tokens) of each row's tokens after its first, for
        validation loss in bits per token (or per character: divide by the characters)."""
        total, n = token_nll(self.logits(x[:, :-1]), x[:, 1:])
        return float(total), int(n)

    def encode(self, x):
        """Mean of the last hidden states over each row's real (non-padding) tokens."""
        check_token_ids(x, self.info.vocab_size, "gpt")
        h = self.transformer(x)
        real = (x != PAD).to(h.dtype)[..., None]
        return (h * real).sum(1) / real.sum(1).clamp_min(1.0)

    def token_vectors(self) -> torch.Tensor:
        """The (tied) token embeddings [vocab_size, n_embd]."""
        return self.transformer.tok_emb.weight.detach()

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue ``prompt`` [n, t] (t >= 1) by ``new_tokens`` sampled tokens; the model sees
        the last ``context`` tokens. Padding is never sampled."""
        if prompt.ndim != 2 or prompt.shape[1] < 1:
            raise ValueError("prompt must be [n, t] token ids with t >= 1")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        x = prompt.to(self.device)
        for _ in range(new_tokens):
            logits = self.logits(x[:, -self.context :])[:, -1].float() / temperature
            logits[:, PAD] = -math.inf
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[1]), dim=1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -math.inf)
            probs = torch.softmax(logits, dim=1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(x.device)
            x = torch.cat([x, nxt], dim=1)
        return x
