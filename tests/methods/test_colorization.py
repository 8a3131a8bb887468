"""colorization: the in-gamut bins, soft targets and the paper's rebalancing, by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from replab.methods.colorization import (
    in_gamut_ab_bins,
    rebalance_weights,
    smooth_prior,
    soft_encode,
)
from replab.nn.colour import rgb_to_lab


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_in_gamut_bins_are_the_cells_of_srgb_colours():
    centres = in_gamut_ab_bins()
    assert len(centres) == 262
    assert torch.equal(centres % 10, torch.zeros_like(centres))
    # every colour of a random sample falls in one of the bins, and grey in the (0, 0) bin
    ab = rgb_to_lab(torch.rand(3, 100, 100, generator=gen()))[1:].reshape(2, -1).T
    cells = {tuple(c) for c in (torch.round(ab / 10) * 10).tolist()}
    assert cells <= {tuple(c) for c in centres.tolist()}
    assert [0.0, 0.0] in centres.tolist()


def test_soft_encoding_spreads_over_the_nearest_bins_with_gaussian_weights():
    centres = in_gamut_ab_bins()
    bins, w = soft_encode(torch.tensor([[0.0, 0.0]]), centres, k=5, sigma=5.0)
    assert centres[bins[0, 0]].tolist() == [0.0, 0.0]
    assert {tuple(c) for c in centres[bins[0, 1:]].tolist()} == {
        (10.0, 0.0),
        (-10.0, 0.0),
        (0.0, 10.0),
        (0.0, -10.0),
    }
    e = math.exp(-(10.0**2) / (2 * 5.0**2))
    expected = torch.tensor([1.0, e, e, e, e]) / (1 + 4 * e)
    assert torch.allclose(w[0], expected, atol=1e-6)


def test_rebalancing_weights_follow_the_papers_formula():
    centres = in_gamut_ab_bins()
    q = len(centres)
    prior = torch.rand(q, generator=gen(), dtype=torch.float64) ** 4
    prior /= prior.sum()
    sigma, lam = 5.0, 0.5
    smoothed = smooth_prior(prior, centres, sigma)
    # independent: the same prior on the full ab grid, smoothed by scipy's Gaussian filter
    idx = (centres / 10).long() + 12
    grid = np.zeros((25, 25))
    grid[idx[:, 0], idx[:, 1]] = prior.numpy()
    filtered = gaussian_filter(grid, sigma / 10, mode="constant", truncate=20.0)
    by_scipy = torch.as_tensor(filtered[idx[:, 0], idx[:, 1]])
    by_scipy /= by_scipy.sum()
    assert torch.allclose(smoothed, by_scipy, rtol=1e-6, atol=1e-12)
    w = rebalance_weights(smoothed, lam)
    raw = 1.0 / (0.5 * smoothed.numpy() + 0.5 / q)
    by_hand = raw / (smoothed.numpy() * raw).sum()
    assert np.allclose(w.numpy(), by_hand, rtol=1e-10)
    assert (smoothed * w).sum().item() == pytest.approx(1.0)  # E_p~[w] = 1
    assert torch.allclose(rebalance_weights(smoothed, 1.0), torch.ones(q, dtype=torch.float64))
    assert w[smoothed.argmin()] > 1 > w[smoothed.argmax()]
