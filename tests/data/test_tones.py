"""Procedural tones: the grid, the labels, the loudness, the pitch and formants they claim."""

import numpy as np
import pytest
import torch

from replab.data.tones import (
    PITCHES,
    TONE_RATE,
    TONE_RMS,
    VOWEL_FORMANTS,
    VOWEL_SEQUENCES,
    Tones,
)


def test_tones_grid_labels_and_loudness():
    d = Tones()
    assert len(d) == 12 * 4 * 60 and d.info.shape == (1, 3840) and d.info.kind == "audio"
    batch = d.get_batch(np.array([0, 1, 2879]))
    assert batch["factors"].tolist() == [[0, 0, 0], [0, 0, 1], [11, 3, 59]]
    assert batch["y"].tolist() == [0, 1, 59]
    rms = batch["x"].pow(2).mean(-1).sqrt()
    np.testing.assert_allclose(rms.numpy(), TONE_RMS, rtol=1e-4)
    again = d.observations(np.array([[11, 3, 59]]))
    assert torch.equal(again, batch["x"][2:])
    with pytest.raises(ValueError, match="out of range"):
        d.observations(np.array([[12, 0, 0]]))
    assert d.raw_baseline_name == "log_mel"
    assert d.raw_features(batch["x"]).shape == (3, 40)


def test_tones_have_the_pitch_and_the_vowel_formants_they_claim():
    d = Tones()
    seq = VOWEL_SEQUENCES.index(("a", "i", "u"))
    x = d.observations(np.array([[5, 3, seq]]))[0, 0].numpy()  # "bright" timbre, all harmonics
    third = len(x) // 3
    f0 = PITCHES[5]
    for part, vowel in zip(range(3), "aiu", strict=True):
        seg = x[part * third + 200 : (part + 1) * third - 200]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        freqs = np.fft.rfftfreq(len(seg), 1 / TONE_RATE)
        near = np.zeros_like(spec, dtype=bool)
        for n in range(1, int(4000 // f0) + 1):
            near |= np.abs(freqs - n * f0) < 15
        assert spec[near].sum() / spec.sum() > 0.99  # all energy at harmonics of f0
        f2 = VOWEL_FORMANTS[vowel][1]
        harmonics = np.arange(1, int(4000 // f0) + 1) * f0
        strongest_high = harmonics[harmonics > 1500][
            np.argmax([spec[np.abs(freqs - h) < 15].sum() for h in harmonics[harmonics > 1500]])
        ]
        if vowel == "i":  # F2 = 2290 Hz: the strongest harmonic above 1.5 kHz is near it
            assert abs(strongest_high - f2) < f0
        band = spec[(freqs > 2000) & (freqs < 2600)].sum() / spec.sum()
        if vowel == "i":
            assert band > 0.02
        else:
            assert band < 0.01


# ------------------------------------------------------------------------------ FSDD
