"""Shuffle and Learn (Misra, Zitnick and Hebert 2016): is a tuple of frames in temporal order?

From each clip five frames a < b < c < d < e are drawn; the tuple (b, c, d) is in order, and
(b, a, d) or (b, e, d), the middle frame replaced by one from outside [b, d], is not. Either
direction counts as in order (the tuple may be shown reversed), so the task is to tell whether
the middle frame lies between the other two, which needs where things are in each frame.
Tuples come from windows with motion: of several random windows per clip the one kept is the
one whose tuple frames differ most (the largest smallest mean absolute difference between the
middle frame and the others, a cheap stand-in for the paper's optical-flow magnitude), so that
the answer is visible. A siamese frame encoder (``replab.nn.backbones``) embeds the frames (each
frame of a clip once, shared by the ``tuples_per_clip`` tuples drawn from it), and a classifier
on a tuple's concatenated features answers in order / not:

    L = -1/N sum_i log softmax(head([f(x_i1), f(x_i2), f(x_i3)]))_{y_i} over the N tuples,
    y_i = 1 iff tuple i is in order.

``encode`` is the frame encoder: frames [B, C, H, W] -> f(x); a clip [B, T, C, H, W] -> its
frames' features pooled over time: their mean and their least-squares slope over time
(sum_t (t - mean t) f_t / sum_t (t - mean t)^2), so that a clip and its reverse differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from replab.config import param
from replab.methods.base import Method
from replab.methods.capabilities import Encoder
from replab.methods.inputs import Clips
from replab.nn.backbones import BACKBONES, make_backbone
from replab.nn.views import step_generator
from replab.registry import register_method

TUPLE_FRAMES = 5  # a < b < c < d < e


@dataclass
class FrameOrderConfig:
    backbone: str = param("conv", choices=list(BACKBONES), help="the siamese frame encoder")
    head_hidden: int = param(256, min=0, help="hidden units of the order classifier (0: linear)")
    negative_fraction: float = param(
        0.75, min=0.0, max=1.0, help="share of out-of-order tuples (Misra et al. use 75%)"
    )
    tuples_per_clip: int = param(8, min=1, help="tuples drawn from each clip's encoded frames")
    candidates: int = param(4, min=1, help="windows drawn per tuple; the one with most motion kept")
    reverse: bool = param(True, help="show half the tuples reversed (both directions in order)")


def frame_differences(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between every two frames of each clip: [B, T, T]."""
    f = x.flatten(2).float()
    return torch.cdist(f, f, p=1.0) / f.shape[-1]


def sample_tuples(x: torch.Tensor, cfg: FrameOrderConfig, generator: torch.Generator):
    """Frame indices [B, n, 3] and labels [B, n] (1 = in order) of n tuples per clip [B, T, ...].

    For each tuple draws ``cfg.candidates`` sorted 5-frame windows a < b < c < d < e, the
    replacement r (a or e, evenly) and the label; keeps the window whose middle frame (c, or r
    for an out-of-order tuple) differs most from the tuple's other two (the largest smallest
    mean absolute difference); then reverses half the tuples when ``cfg.reverse``.
    """
    b, t = x.shape[:2]
    n, k = cfg.tuples_per_clip, cfg.candidates
    order = torch.rand(b, n, k, t, generator=generator).argsort(-1)[..., :TUPLE_FRAMES]
    window = order.sort(-1).values  # [B, n, K, 5]: a, b, c, d, e
    use_e = torch.rand(b, n, k, generator=generator) < 0.5
    negative = torch.rand(b, n, generator=generator) < cfg.negative_fraction
    replacement = torch.where(use_e, window[..., 4], window[..., 0])
    middle = torch.where(negative[..., None], replacement, window[..., 2])
    tuples = torch.stack([window[..., 1], middle, window[..., 3]], -1)  # [B, n, K, 3]
    if k > 1:
        diff = frame_differences(x).cpu()  # [B, T, T]
        rows = torch.arange(b)[:, None, None]
        first = diff[rows, tuples[..., 1], tuples[..., 0]]
        last = diff[rows, tuples[..., 1], tuples[..., 2]]
        best = torch.minimum(first, last).argmax(-1)  # [B, n]
        tuples = tuples.gather(2, best[..., None, None].expand(b, n, 1, 3))[:, :, 0]
    else:
        tuples = tuples[:, :, 0]
    if cfg.reverse:
        flip = torch.rand(b, n, generator=generator) < 0.5
        tuples = torch.where(flip[..., None], tuples.flip(-1), tuples)
    return tuples, (~negative).long()


def temporal_pool(features: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> [B, 2D]: the mean over time and the least-squares slope over time."""
    t = features.shape[1]
    mean = features.mean(1)
    if t < 2:
        return torch.cat([mean, torch.zeros_like(mean)], 1)
    centred = torch.arange(t, dtype=features.dtype, device=features.device) - (t - 1) / 2
    slope = torch.einsum("t,btd->bd", centred, features) / centred.square().sum()
    return torch.cat([mean, slope], 1)


@register_method("frame_order", pillar="pretext")
class FrameOrder(Method, Encoder):
    """Shuffle and Learn (Misra et al. 2016): verify the temporal order of frame tuples."""

    Config = FrameOrderConfig
    accepts = Clips(min_frames=TUPLE_FRAMES)
    # Misra et al. train with SGD on batches of 128 tuples: 16 clips x 8 tuples here. replab
    # uses Adam (lr 1e-3), which needs no step schedule tuned to the run's length.
    train_defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "grad_clip": 0.0}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        shape = tuple(info.shape)
        self.frame_shape = shape[1:]
        self.backbone = make_backbone(cfg.backbone, self.frame_shape)
        d = self.backbone.out_dim
        # The concatenated features are batch-normalised first: the frames' raw features share
        # a large common part, and without it the classifier never left chance in our runs.
        if cfg.head_hidden:
            self.head = nn.Sequential(
                nn.BatchNorm1d(3 * d),
                nn.Linear(3 * d, cfg.head_hidden),
                nn.ReLU(),
                nn.Linear(cfg.head_hidden, 2),
            )
        else:
            self.head = nn.Sequential(nn.BatchNorm1d(3 * d), nn.Linear(3 * d, 2))

    def accepts_shape(self, shape) -> bool:
        """Clips of any length with this frame shape, or single frames."""
        shape = tuple(shape)
        return shape == self.frame_shape or (len(shape) == 4 and shape[1:] == self.frame_shape)

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """f of every frame: [B, T, D]."""
        b, t = clips.shape[:2]
        return self.backbone(clips.flatten(0, 1)).view(b, t, -1)

    def encode(self, x):
        if x.ndim == 4:
            return self.backbone(x)
        return temporal_pool(self.frame_features(x))

    def loss(self, batch, step):
        x = batch["x"]
        tuples, labels = sample_tuples(x, self.cfg, step_generator(self.seed, step))
        feats = self.frame_features(x)  # every frame once; the tuples share them
        rows = torch.arange(len(x), device=x.device)[:, None, None]
        logits = self.head(feats[rows, tuples.to(x.device)].flatten(2).flatten(0, 1))
        labels = labels.to(x.device).flatten()
        return {
            "loss": F.cross_entropy(logits, labels),
            "accuracy": (logits.argmax(1) == labels).float().mean().detach(),
            "in_order_share": labels.float().mean(),
        }
