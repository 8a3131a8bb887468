"""word2vec (Mikolov et al., 2013): skip-gram or CBOW with negative sampling.

A batch is rows of token ids (chunks of a corpus); the training pairs are made from it as
word2vec.c makes them while it reads (all at once in the batched engine, one by one in the
compiled one):

1. sub-sampling: each occurrence of word w is kept with probability
   ``P_keep(w) = min(1, sqrt(t / f(w)) + t / f(w))`` (word2vec.c's form of the paper's
   ``1 - sqrt(t / f)`` discard rule), f(w) = count(w) / total; the kept words close up;
2. each centre draws its window b uniformly from 1..window ("random shrinking");
3. skip-gram: a pair (centre, context) for every kept word within b of the centre;
   CBOW: the mean of those context vectors predicts the centre;
4. negatives: ``K`` words per pair from ``P_n(w) = count(w)^0.75 / sum_v count(v)^0.75``.

Loss, per pair (c, o) with noise words n_1..n_K:
``L = -[log sigma(u_o . v_c) + sum_k log sigma(-u_{n_k} . v_c)]``, v the input ("word")
vectors (what ``encode`` and the word queries use), u the output ones.

Two engines train it (``engine``):

- ``compiled`` (``auto``'s choice on a CPU): word2vec.c's own update, plain SGD one pair at a
  time at ``alpha`` (0.025), decayed on the run's schedule (linear to 1e-4 of itself), in a
  numba kernel on Hogwild threads (``methods.word2vec_kernel``). With one thread a run is
  exact to resume; with more, the threads race on shared vectors as word2vec.c's and gensim's
  do, and two runs differ in the last bits.
- ``batched`` (``auto``'s choice on a GPU): the pairs of a batch made at once in torch, and the
  mean loss minimised by the loop's optimiser. A batch of thousands of pairs updates a frequent
  word's vectors hundreds of times at once, and summed SGD at word2vec's rate diverges; Adam on
  the mean loss (train.lr 0.01, linear decay to 1e-4) adapts the step per coordinate and trains
  stably, though to worse vectors than per-pair SGD (``bench_word2vec`` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import ConfigError, param
from replab.data.tokens import check_token_ids
from replab.methods.base import Method, SelfUpdating
from replab.methods.capabilities import Encoder, TokenVectors
from replab.methods.inputs import Tokens
from replab.registry import register_method

PAD = 0

# Linear decay to 1e-4 of the peak as word2vec.c. The optimiser settings are the batched
# engine's (Adam, see above); the compiled engine follows only the schedule, at its ``alpha``.
# A batch is 32 chunks (2,048 words at seq_len 64).
WORD2VEC_TRAIN_DEFAULTS = {
    "optimizer": "adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "schedule": "linear",
    "min_lr_ratio": 1e-4,
    "warmup_steps": 0,
    "grad_clip": 0.0,
    "batch_size": 32,
    # word2vec.c and gensim read the corpus in order each epoch; shuffling the chunks cost a
    # fifth of the analogies on tinyshakespeare (bench_word2vec, 3 seeds each)
    "order": "in_order",
}


@dataclass
class Word2VecConfig:
    """word2vec.c's defaults (Mikolov et al., 2013)."""

    dim: int = param(100, min=1, help="vector size")
    window: int = param(5, min=1, help="max distance; each centre draws its own in 1..window")
    negatives: int = param(5, min=1, help="noise words per pair")
    ns_exponent: float = param(0.75, help="noise distribution count^ns_exponent")
    sample: float = param(1e-3, min=0.0, help="sub-sampling threshold t; 0 keeps every word")
    architecture: str = param("skipgram", choices=["skipgram", "cbow"])
    reduction: str = param("mean", choices=["mean", "sum"], help="of the loss over the pairs")
    sparse: bool = param(False, help="sparse gradients (for plain SGD with reduction=sum)")
    engine: str = param(
        "auto",
        choices=["auto", "compiled", "batched"],
        help="compiled: word2vec.c's per-pair SGD (CPU); batched: torch (any device); "
        "auto: compiled on a CPU",
    )
    alpha: float = param(0.025, min=0.0, help="compiled engine: word2vec.c's -alpha, the SGD rate")
    threads: int = param(0, min=0, help="compiled engine: threads; 0: torch's thread count")


def keep_probabilities(counts: torch.Tensor, t: float) -> torch.Tensor:
    """P_keep(w) = min(1, sqrt(t / f) + t / f), f = count / total; 1 when t = 0."""
    counts = counts.double()
    if t <= 0:
        return torch.ones_like(counts)
    f = counts / counts.sum()
    ratio = t / f.clamp_min(1e-300)
    return (ratio.sqrt() + ratio).clamp(max=1.0).where(counts > 0, torch.zeros_like(counts))


def noise_distribution(counts: torch.Tensor, exponent: float) -> torch.Tensor:
    """P_n(w) = count(w)^exponent / sum_v count(v)^exponent (never-seen ids get 0)."""
    w = (
        counts.double()
        .pow(exponent)
        .where(counts > 0, torch.zeros_like(counts, dtype=torch.double))
    )
    return w / w.sum()


def close_up(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Move the kept tokens of each row to its front, in order; the rest become padding."""
    keep = keep & (x != PAD)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    return torch.where(torch.gather(keep, 1, order), torch.gather(x, 1, order), torch.zeros_like(x))


def skipgram_pairs(x: torch.Tensor, reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres, contexts): every (x[i, j], x[i, j + o]) with 1 <= |o| <= reach[i, j] and both
    tokens real (not padding). ``reach`` [B, L] is each centre's window."""
    real = x != PAD
    centres, contexts = [], []
    b, length = x.shape
    for o in range(1, int(reach.max().item()) + 1 if reach.numel() else 1):
        if o >= length:
            break
        near = real[:, :-o] & real[:, o:]
        fwd = near & (reach[:, :-o] >= o)  # centre j, context j + o
        bwd = near & (reach[:, o:] >= o)  # centre j + o, context j
        centres += [x[:, :-o][fwd], x[:, o:][bwd]]
        contexts += [x[:, o:][fwd], x[:, :-o][bwd]]
    if not centres:
        empty = x.new_zeros(0)
        return empty, empty
    return torch.cat(centres), torch.cat(contexts)


def cbow_windows(x: torch.Tensor, reach: torch.Tensor, window: int):
    """(centres [N], contexts [N, 2 window], mask [N, 2 window]) for every real centre with at
    least one real context word within its reach."""
    b, length = x.shape
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(x.device)
    pos = torch.arange(length, device=x.device)[:, None] + offsets  # [L, 2W]
    inside = (pos >= 0) & (pos < length)
    ctx = x[:, pos.clamp(0, length - 1)]  # [B, L, 2W]
    mask = inside[None] & (ctx != PAD) & (offsets.abs()[None, None] <= reach[..., None])
    mask &= (x != PAD)[..., None]
    has = mask.any(-1)
    return x[has], ctx[has], mask[has]


@register_method("word2vec", pillar="contrastive")
class Word2Vec(Method, SelfUpdating, Encoder, TokenVectors):
    """word2vec (Mikolov et al., 2013): skip-gram/CBOW with negative sampling."""

    Config = Word2VecConfig
    accepts = Tokens(counts=True)
    train_defaults = WORD2VEC_TRAIN_DEFAULTS

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        v = info.vocab_size
        counts = torch.tensor(info.token_counts, dtype=torch.double)
        counts[PAD] = 0
        self.register_buffer("keep_prob", keep_probabilities(counts, cfg.sample).float(), False)
        self.register_buffer("noise", noise_distribution(counts, cfg.ns_exponent).float(), False)
        self.in_vectors = nn.Embedding(v, cfg.dim, sparse=cfg.sparse)
        self.out_vectors = nn.Embedding(v, cfg.dim, sparse=cfg.sparse)
        # input vectors uniform in +-1/dim as gensim (word2vec.c: +-0.5/dim; gensim's start
        # was worth 3 more analogies of 342 on tinyshakespeare, over 8 seeds), output ones zero
        nn.init.uniform_(self.in_vectors.weight, -1.0 / cfg.dim, 1.0 / cfg.dim)
        nn.init.zeros_(self.out_vectors.weight)
        self._noise_table = None  # the compiled engine's alias table of ``noise``, once built

    def _negatives(self, n: int) -> torch.Tensor:
        k = self.cfg.negatives
        if n == 0:
            return torch.zeros(0, k, dtype=torch.long, device=self.noise.device)
        return torch.multinomial(self.noise, n * k, replacement=True).view(n, k)

    def _nce(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per example: -log sigma(u_t . h) - sum_k log sigma(-u_{n_k} . h), noise words equal
        to the target skipped (as word2vec.c does)."""
        neg = self._negatives(len(target))
        u_pos = self.out_vectors(target)
        u_neg = self.out_vectors(neg)
        pos = F.logsigmoid((h * u_pos).sum(-1))
        negs = F.logsigmoid(-torch.bmm(u_neg, h[:, :, None]).squeeze(-1))
        return -(pos + (negs * (neg != target[:, None])).sum(-1))

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """Keep each token with probability P_keep (its ``keep_prob``) and close up the row."""
        return close_up(x, torch.rand(x.shape, device=x.device) < self.keep_prob[x])

    def loss(self, batch, step):
        x = self.subsample(batch["x"])
        reach = torch.randint(1, self.cfg.window + 1, x.shape, device=x.device)
        if self.cfg.architecture == "skipgram":
            centre, context = skipgram_pairs(x, reach)
            per_pair = self._nce(self.in_vectors(centre), context)
        else:
            centre, ctx, mask = cbow_windows(x, reach, self.cfg.window)
            m = mask.to(self.in_vectors.weight.dtype)[..., None]
            h = (self.in_vectors(ctx) * m).sum(1) / m.sum(1)
            per_pair = self._nce(h, centre)
        total = per_pair.sum()
        n = max(len(per_pair), 1)
        return {
            "loss": total / n if self.cfg.reduction == "mean" else total,
            "loss_per_pair": total.detach() / n,
            "pairs": torch.tensor(float(len(per_pair))),
        }

    def updates_itself(self) -> bool:
        """The compiled engine trains by its own per-pair SGD; the batched one by the loop."""
        on_cpu = self.in_vectors.weight.device.type == "cpu"
        if self.cfg.engine == "compiled" and not on_cpu:
            raise ConfigError(
                "word2vec: engine=compiled runs on the CPU; on "
                f"{self.in_vectors.weight.device.type} use engine=batched (or auto)"
            )
        if self.cfg.engine == "compiled" and self.cfg.sparse:
            raise ConfigError("word2vec: sparse applies to the batched engine only")
        return self.cfg.engine == "compiled" or (self.cfg.engine == "auto" and on_cpu)

    def update(self, batch, step, lr_scale):
        """word2vec.c's per-pair SGD on the batch's rows, at ``alpha * lr_scale``."""
        from replab.methods import word2vec_kernel

        x = batch["x"]
        check_token_ids(x, self.info.vocab_size, "word2vec")
        if self._noise_table is None:
            self._noise_table = word2vec_kernel.alias_table(self.noise.double().numpy())
        total, pairs = word2vec_kernel.run_batch(
            self.in_vectors.weight.detach().numpy(),
            self.out_vectors.weight.detach().numpy(),
            x.numpy(),
            self.keep_prob.double().numpy(),
            self._noise_table,
            window=self.cfg.window,
            negatives=self.cfg.negatives,
            cbow=self.cfg.architecture == "cbow",
            alpha=self.cfg.alpha * lr_scale,
            key=word2vec_kernel.step_key(self.seed, step),
            threads=self.cfg.threads or torch.get_num_threads(),
        )
        per_pair = torch.tensor(total / max(pairs, 1))
        return {"loss": per_pair, "loss_per_pair": per_pair, "pairs": torch.tensor(float(pairs))}

    def encode(self, x):
        """Mean of the word vectors of each row's tokens (padding ignored; zeros if none)."""
        check_token_ids(x, self.info.vocab_size, "word2vec")
        real = (x != PAD).to(self.in_vectors.weight.dtype)[..., None]
        return (self.in_vectors(x) * real).sum(1) / real.sum(1).clamp_min(1.0)

    def token_vectors(self) -> torch.Tensor:
        """The word vectors [vocab_size, dim] (row 0: padding)."""
        return self.in_vectors.weight.detach()
