"""Procedural vowel-like tones with known factors: ``tones`` (pitch x timbre x vowel sequence)."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

from replab.data.audio import AudioFeatures
from replab.data.base import DataInfo, GroundTruthDataset
from replab.registry import register_dataset

# ----------------------------------------------------------------------------------------------
# Procedural tones with known factors

TONE_RATE = 8000
TONE_SAMPLES = 3840  # 0.48 s: 24 frames of CPC's 160x down-sampling, 8 per vowel
PITCHES = 110.0 * 2.0 ** (np.arange(12) / 12.0)  # A2 and the 11 semitones above it
TIMBRE_NAMES = ["saw", "square", "mellow", "bright"]
VOWEL_FORMANTS = {  # (F1, F2) in Hz, rounded adult male averages (Peterson and Barney 1952)
    "a": (730.0, 1090.0),
    "e": (530.0, 1840.0),
    "i": (270.0, 2290.0),
    "o": (570.0, 840.0),
    "u": (300.0, 870.0),
}
VOWEL_SEQUENCES = list(itertools.permutations("aeiou", 3))  # 60 ordered triples
FORMANT_BANDWIDTHS = (90.0, 110.0)
CROSSFADE_S = 0.02  # the spectrum moves linearly from one vowel to the next over 20 ms
TONE_RMS = 0.1


def _timbre_weights(timbre: int, n: np.ndarray) -> np.ndarray:
    """Amplitude of harmonic n: saw 1/n, square odd 1/n, mellow 1/n^2, bright 1/sqrt(n)."""
    if timbre == 0:
        return 1.0 / n
    if timbre == 1:
        return np.where(n % 2 == 1, 1.0 / n, 0.0)
    if timbre == 2:
        return 1.0 / n**2
    return 1.0 / np.sqrt(n)


_N_HARMONICS = int((TONE_RATE / 2) // PITCHES[0])  # 36 harmonics of the lowest pitch


@functools.lru_cache(maxsize=1)
def _tone_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sines [pitch, H, T], harmonic amplitudes [pitch, timbre, H], formant gains
    [pitch, vowel, H], vowel weights [3, T]), float64; computed once."""
    t = np.arange(TONE_SAMPLES) / TONE_RATE
    n = np.arange(1, _N_HARMONICS + 1, dtype=np.float64)
    freq = PITCHES[:, None] * n  # [P, H]
    audible = freq < TONE_RATE / 2
    sines = np.sin(2.0 * np.pi * freq[:, :, None] * t) * audible[:, :, None]
    amps = (
        np.stack([_timbre_weights(k, n) for k in range(len(TIMBRE_NAMES))])[None] * audible[:, None]
    )
    formants = np.array([VOWEL_FORMANTS[v] for v in "aeiou"])  # [5, 2]
    gains = sum(
        1.0 / (1.0 + ((freq[:, None, :] - formants[None, :, i, None]) / bw) ** 2)
        for i, bw in enumerate(FORMANT_BANDWIDTHS)
    )  # [P, 5, H]
    seg = TONE_SAMPLES / TONE_RATE / 3.0
    rise2 = np.clip((t - seg) / CROSSFADE_S + 0.5, 0.0, 1.0)
    rise3 = np.clip((t - 2 * seg) / CROSSFADE_S + 0.5, 0.0, 1.0)
    weights = np.stack([1.0 - rise2, rise2 - rise3, rise3])  # [3, T], summing to 1
    return sines, amps, gains, weights


_SEQUENCE_VOWELS = np.array([["aeiou".index(v) for v in s] for s in VOWEL_SEQUENCES])  # [60, 3]


@register_dataset("tones")
class Tones(AudioFeatures, GroundTruthDataset):
    """Procedural vowel-like tones: pitch x timbre x a sequence of three vowels (2,880 clips).

    A clip is a harmonic tone (0.48 s at 8 kHz) of fundamental f0 = ``PITCHES[pitch]``, with the
    amplitudes a_n of its ``timbre`` shaped by the two formant resonances of a vowel,
    ``G_v(f) = sum_i 1 / (1 + ((f - F_i(v)) / B_i)^2)``; three vowels follow each other (a
    third of the clip each), the spectrum crossfading linearly over 20 ms at each change:
    ``x(t) = sum_k w_k(t) sum_n a_n G_{v_k}(n f0) sin(2 pi n f0 t / rate)`` over harmonics below
    4 kHz, scaled to RMS 0.1. Exact and deterministic: the same factors always give the same
    samples. The label is the vowel sequence (the "word"); pitch and timbre play the speaker.
    """

    name = "tones"
    factor_names = ["pitch", "timbre", "vowels"]
    factor_sizes = [len(PITCHES), len(TIMBRE_NAMES), len(VOWEL_SEQUENCES)]
    label_factor = "vowels"
    categorical_factors = ("timbre", "vowels")
    class_names = ["".join(s) for s in VOWEL_SEQUENCES]
    sample_rate = TONE_RATE
    info = DataInfo(shape=(1, TONE_SAMPLES), num_classes=len(VOWEL_SEQUENCES), kind="audio")

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Waveforms float32 [n, 1, 3840] of factor indices [n, 3] (``rng`` unused)."""
        f = self.checked_factors(factors)
        sines, amps, gains, weights = _tone_tables()
        out = np.empty((len(f), TONE_SAMPLES), dtype=np.float64)
        for p in np.unique(f[:, 0]):
            rows = np.flatnonzero(f[:, 0] == p)
            vowels = _SEQUENCE_VOWELS[f[rows, 2]]  # [m, 3]
            coef = amps[p, f[rows, 1]][:, None, :] * gains[p, vowels]  # [m, 3, H]
            parts = coef @ sines[p]  # [m, 3, T]: each vowel's steady tone
            out[rows] = np.einsum("mkt,kt->mt", parts, weights)
        out *= TONE_RMS / np.sqrt(np.mean(out**2, axis=1, keepdims=True))
        return torch.from_numpy(out.astype(np.float32)[:, None])
