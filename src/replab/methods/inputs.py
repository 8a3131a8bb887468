"""What data a method accepts, declared on its class (``accepts = Images(square=True)``).

A requirement reads only a data set's ``DataInfo`` (kind and shape), so ``replab list`` can show
it, the tests and benchmarks can pick a data set a method takes without trying, and the method
refuses anything else with one line before any work starts. A setting that narrows what a method
takes (a patch size, a number of stride-2 layers) is checked by the method's own
``data_problem(info, cfg)``, which extends its requirement's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from replab.data.base import DataInfo


class Requirement(ABC):
    @abstractmethod
    def problem(self, info: DataInfo) -> str | None:
        """Why data of this ``info`` cannot be used (one line), or None when it can."""

    @abstractmethod
    def describe(self) -> str:
        """A few words for ``replab list``: what the method trains on."""


def _got(info: DataInfo) -> str:
    return f"got {info.kind} data of shape {tuple(info.shape)}"


@dataclass(frozen=True)
class Images(Requirement):
    """Images [C, H, W]; optionally square, with given channel counts, at least ``min_side``."""

    square: bool = False
    channels: tuple[int, ...] | None = None
    min_side: int = 1

    def problem(self, info):
        shape = tuple(info.shape)
        if info.kind != "image" or len(shape) != 3:
            return f"needs images [C, H, W], {_got(info)}"
        c, h, w = shape
        if self.square and h != w:
            return f"needs square images, got {h}x{w}"
        if self.channels == (3,) and c != 3:
            return f"needs colour images (3 channels, RGB); the data has {c} (shape {shape})"
        if self.channels is not None and c not in self.channels:
            want = " or ".join(map(str, self.channels))
            return f"needs images with {want} channel(s), got {c} (shape {shape})"
        if min(h, w) < self.min_side:
            return f"needs images of at least {self.min_side}x{self.min_side}, got {h}x{w}"
        return None

    def describe(self):
        words = ["square" if self.square else ""]
        if self.channels == (3,):
            words.append("colour")
        words.append("images")
        if self.min_side > 1:
            words.append(f">= {self.min_side} px")
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Tokens(Requirement):
    """Rows of token ids with a vocabulary; ``counts``: with the training split's token counts."""

    counts: bool = False

    def problem(self, info):
        if info.kind != "tokens" or not info.vocab_size:
            return f"needs token data (e.g. text:PATH), {_got(info)}"
        if self.counts and (info.token_counts is None or sum(info.token_counts[1:]) == 0):
            return "needs the token counts of its data set"
        return None

    def describe(self):
        return "tokens"


@dataclass(frozen=True)
class Audio(Requirement):
    """Waveforms [channels, samples]."""

    def problem(self, info):
        if info.kind != "audio" or len(info.shape) != 2:
            return f"needs audio [channels, samples], {_got(info)}"
        return None

    def describe(self):
        return "audio"


@dataclass(frozen=True)
class Clips(Requirement):
    """Video clips [T, C, H, W] of at least ``min_frames`` frames."""

    min_frames: int = 1

    def problem(self, info):
        if info.kind != "video" or len(info.shape) != 4:
            return f"needs clips [T, C, H, W], {_got(info)}"
        if info.shape[0] < self.min_frames:
            return f"needs clips of >= {self.min_frames} frames, got {info.shape[0]}"
        return None

    def describe(self):
        return "video clips"


@dataclass(frozen=True)
class PosedViews(Requirement):
    """Scenes as posed views: ``x`` [V, C, H, W] with ``pose`` [V, 7], at least ``min_views``."""

    min_views: int = 2

    def problem(self, info):
        if info.kind != "views" or len(info.shape) != 4:
            return f"needs posed views of scenes [V, C, H, W] with poses (e.g. rooms), {_got(info)}"
        if info.shape[0] < self.min_views:
            return f"needs >= {self.min_views} views per scene, got {info.shape[0]}"
        return None

    def describe(self):
        return "posed views of scenes"
