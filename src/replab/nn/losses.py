"""Losses shared by methods: the contrastive NT-Xent loss (SimCLR) and InfoNCE (CPC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from replab import distributed as dist


class NTXentLoss(nn.Module):
    """Normalised temperature-scaled cross entropy, "NT-Xent" (Chen et al. 2020, SimCLR, eq. 1).

    For N pairs of embeddings (z_i, z'_i), write u_1..u_2N = z_1..z_N, z'_1..z'_N, let
    sim(a, b) = a^T b / (||a|| ||b||), t the temperature and p(k) the other view of the same
    image (k + N or k - N). The loss of anchor k is

        l(k) = -log [ exp(sim(u_k, u_p(k)) / t) / sum_{j != k} exp(sim(u_k, u_j) / t) ]

    and the loss is the mean of l(k) over the 2N anchors: every other view in the batch is a
    negative (2N - 2 of them). Under ``torchrun`` the embeddings of every process are gathered
    with gradients (``gather_with_grad``): each process averages l over its own 2n anchors against
    all 2N embeddings, and DDP's gradient average then gives the gradient of the global mean, as
    one process with the whole batch would.
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"NT-Xent temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def logits_and_targets(
        self, z1: torch.Tensor, z2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [2n, 2N] of the local anchors against every embedding (self-similarity set to
        -inf) and the column of each anchor's positive."""
        if z1.shape != z2.shape or z1.ndim != 2:
            raise ValueError(
                f"NT-Xent needs two [n, d] batches of equal shape, got {tuple(z1.shape)} "
                f"and {tuple(z2.shape)}"
            )
        n = len(z1)
        z1 = F.normalize(z1.float(), dim=1)
        z2 = F.normalize(z2.float(), dim=1)
        offset = 0
        k1, k2 = z1, z2
        if self.gather_distributed and dist.world_size() > 1:
            k1, k2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)
            offset = dist.rank() * n
        big_n = len(k1)
        anchors = torch.cat([z1, z2])
        keys = torch.cat([k1, k2])
        # fp32 even under bf16 autocast: cosines carry ~3 significant digits in bf16, too few
        # for logits up to 1/t apart (and index_put below needs one dtype)
        with torch.autocast(z1.device.type, enabled=False):
            logits = anchors @ keys.T / self.temperature
        local = torch.arange(n, device=z1.device) + offset
        own = torch.cat([local, local + big_n])  # each anchor's own column
        positive = torch.cat([local + big_n, local])  # the other view of the same image
        rows = torch.arange(2 * n, device=z1.device)
        minus_inf = torch.tensor(float("-inf"), dtype=logits.dtype, device=z1.device)
        logits = logits.index_put((rows, own), minus_inf)
        return logits, positive

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        logits, positive = self.logits_and_targets(z1, z2)
        return F.cross_entropy(logits, positive)


# ----------------------------------------------------------------------------------------------
# InfoNCE (CPC)

NEGATIVE_MODES = ("any", "same_group", "other_groups")


def draw_negatives(
    positive: torch.Tensor,
    pool_size: int,
    group_size: int,
    num: int,
    mode: str = "any",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices [N, num] of negatives for positives [N] in a pool of keys, never the positive.

    The pool holds ``pool_size`` keys in groups of ``group_size`` consecutive ones (key
    ``g * group_size + s``: sequence g, time s). Negatives are uniform, with replacement, over
    the keys ``mode`` allows: ``any`` every key but the positive (other times and other
    sequences), ``same_group`` the other keys of the positive's group (other times of the same
    sequence), ``other_groups`` the keys of every other group (other sequences). The positive is
    excluded by construction: a draw u from the allowed count minus one is shifted past it.
    """
    if mode not in NEGATIVE_MODES:
        raise ValueError(f"negatives mode {mode!r}; choose from: {', '.join(NEGATIVE_MODES)}")
    if group_size < 1 or pool_size % group_size:
        raise ValueError(f"pool of {pool_size} keys is not whole groups of {group_size}")
    pos = positive.detach().long().cpu()
    if pos.numel() and (pos.min() < 0 or pos.max() >= pool_size):
        raise ValueError(f"positive indices must lie in [0, {pool_size})")
    n, groups = len(pos), pool_size // group_size
    g, s = pos // group_size, pos % group_size
    if mode == "any":
        if pool_size < 2:
            raise ValueError("negatives need a pool of at least 2 keys")
        u = torch.randint(0, pool_size - 1, (n, num), generator=generator)
        idx = u + (u >= pos[:, None]).long()
    elif mode == "same_group":
        if group_size < 2:
            raise ValueError("same_group negatives need groups of at least 2 keys")
        u = torch.randint(0, group_size - 1, (n, num), generator=generator)
        idx = g[:, None] * group_size + u + (u >= s[:, None]).long()
    else:
        if groups < 2:
            raise ValueError("other_groups negatives need at least 2 groups (sequences)")
        u = torch.randint(0, groups - 1, (n, num), generator=generator)
        other = u + (u >= g[:, None]).long()
        idx = other * group_size + torch.randint(0, group_size, (n, num), generator=generator)
    return idx.to(positive.device)


class InfoNCELoss(nn.Module):
    """InfoNCE (van den Oord et al. 2018, CPC, eq. 4): pick the positive key out of negatives.

    For predictions p_i (CPC: W_k c_t) scored against a pool of keys k_j (CPC: the latents
    z) by s_ij = p_i^T k_j / t (or the cosine similarity / t with ``normalize=True``), with
    positive key pos(i) and negatives N(i) (drawn indices that never include pos(i)):

        L = -1/N sum_i log [ exp(s_i,pos(i)) / (exp(s_i,pos(i)) + sum_{j in N(i)} exp(s_ij)) ]

    a cross-entropy that is lowest when p_i scores its own key above every negative. Without
    drawn negatives every other key of the pool is one (the full softmax over the pool).
    log(1 + |N(i)|) - L is a lower bound on the mutual information the scores capture.
    """

    def __init__(self, temperature: float = 1.0, normalize: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"InfoNCE temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.normalize = normalize

    def scores(self, predictions: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """s [N, P] of predictions [N, D] against keys [P, D]."""
        if predictions.ndim != 2 or keys.ndim != 2 or predictions.shape[1] != keys.shape[1]:
            raise ValueError(
                f"InfoNCE needs predictions [N, D] and keys [P, D], got "
                f"{tuple(predictions.shape)} and {tuple(keys.shape)}"
            )
        p, k = predictions.float(), keys.float()
        if self.normalize:
            p, k = F.normalize(p, dim=1), F.normalize(k, dim=1)
        return p @ k.T / self.temperature

    @staticmethod
    def logits(
        scores: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, target) for the cross-entropy: [N, 1 + M] with the positive in column 0
        and target 0, or, without negatives, the scores themselves and ``positive``."""
        positive = positive.long()
        if negatives is None:
            return scores, positive
        pos = scores.gather(1, positive[:, None])
        return torch.cat([pos, scores.gather(1, negatives.long())], 1), torch.zeros_like(positive)

    def forward(
        self,
        predictions: torch.Tensor,
        keys: torch.Tensor,
        positive: torch.Tensor,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits, target = self.logits(self.scores(predictions, keys), positive, negatives)
        return F.cross_entropy(logits, target)
