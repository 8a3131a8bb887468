"""The raw-input baseline of audio: the mel scale and log-mel spectra by known answers."""

import numpy as np
import pytest
import torch

from replab.data.audio import hz_to_mel, log_mel, mel_filterbank, mel_to_hz


def sine(freq: float, rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(n) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def test_mel_scale_and_filterbank_follow_the_htk_formulas():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.05)  # the scale's anchor
    assert mel_to_hz(hz_to_mel(3210.0)) == pytest.approx(3210.0)
    fb = mel_filterbank(8000, 256, 10)
    assert fb.shape == (10, 129)
    centres = mel_to_hz(np.linspace(0, hz_to_mel(4000.0), 12))[1:-1]
    freqs = np.arange(129) * 8000 / 256
    for m in range(10):  # each triangle is 1 at its centre, 0 at its neighbours' centres
        edges = mel_to_hz(np.linspace(0, hz_to_mel(4000.0), 12))
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        want = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
        np.testing.assert_allclose(fb[m], want)
    assert np.all(np.diff(hz_to_mel(centres)) == pytest.approx(np.diff(hz_to_mel(centres))[0]))


def test_log_mel_of_a_pure_tone_peaks_in_the_band_of_its_frequency():
    rate = 8000
    edges = mel_to_hz(np.linspace(0, hz_to_mel(rate / 2), 42))
    for freq in (300.0, 1000.0, 2500.0):
        x = torch.tensor(sine(freq, rate, rate // 2), dtype=torch.float32)[None, None]
        spec = log_mel(x, rate)
        assert spec.shape == (1, 40, 51)  # 10 ms hops over 0.5 s, centred frames
        band = int(spec[0, :, 10:40].mean(-1).argmax())
        assert abs(edges[band + 1] - freq) <= max(edges[band + 1] - edges[band], 1.0) + 1e-6


# ------------------------------------------------------------------------------ tones
