"""Audio in memory, and the protocol's raw-input baseline for it: a time-averaged log-mel spectrum.

Every example is ``{"x": float32 [1, L]}`` (a mono waveform in [-1, 1] at the data set's
``sample_rate``), with ``"y"`` when a label is known; ``DataInfo(kind="audio", shape=(1, L))``.
The data sets: ``wav:`` (a folder of WAV files, ``data.wav``) and ``tones`` (procedural, with
known factors, ``data.tones``).
"""

from __future__ import annotations

import numpy as np
import torch

from replab.data.base import DataError, DataInfo, InMemoryDataset

# ----------------------------------------------------------------------------------------------
# The raw-input baseline: a time-averaged log-mel spectrogram

N_MELS = 40
WINDOW_S = 0.025  # 25 ms Hann windows every 10 ms (the usual speech front end)
HOP_S = 0.010
LOG_FLOOR = 1e-6


def hz_to_mel(f):
    """HTK's mel scale: m = 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1] on the HTK mel scale from 0 Hz to Nyquist.

    Filter m rises linearly from the (m-1)-th to the m-th of n_mels + 2 points equally spaced in
    mel and falls to the (m+1)-th, peaking at 1 (HTK's unnormalised triangles).
    """
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2.0), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs - lo) / (mid - lo)
    fall = (hi - freqs) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


def log_mel(x: torch.Tensor, sample_rate: int, n_mels: int = N_MELS) -> torch.Tensor:
    """log(mel power + 1e-6) of waveforms [n, L] or [n, 1, L]: [n, n_mels, frames].

    Power spectrum of 25 ms Hann windows every 10 ms (``torch.stft``, centred, the FFT size the
    next power of two), through :func:`mel_filterbank`.
    """
    x = x.reshape(len(x), -1).float()
    win = max(2, round(WINDOW_S * sample_rate))
    hop = max(1, round(HOP_S * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, dtype=x.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    fb = torch.as_tensor(mel_filterbank(sample_rate, n_fft, n_mels), dtype=x.dtype)
    return torch.log(fb @ spec.abs().square() + LOG_FLOOR)


class AudioFeatures:
    """The protocol's raw baseline for audio: the log-mel spectrogram averaged over time."""

    raw_baseline_name = "log_mel"
    sample_rate: int

    def raw_features(self, x: torch.Tensor) -> np.ndarray:
        out = [log_mel(x[i : i + 256], self.sample_rate).mean(-1) for i in range(0, len(x), 256)]
        return torch.cat(out).numpy()


class AudioDataset(AudioFeatures, InMemoryDataset):
    """Waveforms in memory: x float32 [N, 1, L] at ``sample_rate`` Hz, optional labels."""

    def __init__(
        self,
        x: np.ndarray,
        sample_rate: int,
        y: np.ndarray | None = None,
        *,
        name: str = "audio",
        class_names: list[str] | None = None,
        test_mask: np.ndarray | None = None,
        files: list[str] | None = None,
    ):
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if self.x.ndim == 2:
            self.x = self.x[:, None]
        if self.x.ndim != 3 or len(self.x) == 0:
            raise DataError(f"{name}: expected waveforms [N, 1, L], got {tuple(self.x.shape)}")
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.sample_rate = int(sample_rate)
        self.name = name
        self.class_names = class_names
        self.files = files
        num_classes = (
            None if self.y is None else (len(class_names) if class_names else int(self.y.max()) + 1)
        )
        self.info = DataInfo(shape=tuple(self.x.shape[1:]), num_classes=num_classes, kind="audio")
        self.test_mask = None if test_mask is None else np.asarray(test_mask, dtype=bool)
