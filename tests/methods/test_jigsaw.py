"""jigsaw: the maximal-Hamming permutation set, the labels, and per-tile normalisation."""

import itertools

import numpy as np
import pytest
import torch

from replab.config import ConfigError
from replab.methods.jigsaw import (
    jigsaw_geometry,
    jigsaw_tiles,
    maximal_hamming_permutations,
    normalise_tiles,
    shuffle_tiles,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def hamming_min(perms):
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    return d[~np.eye(len(perms), dtype=bool)].min()


@pytest.mark.parametrize("k, n", [(4, 2), (4, 3), (4, 4), (4, 5), (4, 6), (5, 3)])
def test_maximal_hamming_selection_reaches_the_brute_force_optimum(k, n):
    chosen = maximal_hamming_permutations(n, k)
    assert chosen.shape == (n, k) and len({tuple(p) for p in chosen}) == n
    everything = np.array(list(itertools.permutations(range(k))))
    d = (everything[:, None, :] != everything[None, :, :]).sum(-1)
    combos = np.array(list(itertools.combinations(range(len(everything)), n)))
    worst = np.full(len(combos), k)
    for i, j in itertools.combinations(range(n), 2):
        worst = np.minimum(worst, d[combos[:, i], combos[:, j]])
    assert hamming_min(chosen) == worst.max()


def test_default_permutation_set_is_deterministic_and_far_apart():
    perms = maximal_hamming_permutations(100)
    assert perms.shape == (100, 9)
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == 100
    assert perms[0].tolist() == list(range(9))  # starts at the identity
    assert hamming_min(perms) == 6
    # greedy: a smaller set is the start of a larger one (so nothing depends on n but its size)
    assert np.array_equal(maximal_hamming_permutations(10), perms[:10])


def test_jigsaw_label_is_the_index_of_the_permutation_applied():
    cell, tile = jigsaw_geometry(27)  # 9-px cells, 8-px tiles
    assert (cell, tile) == (9, 8)
    # every pixel of cell k holds k
    ids = torch.arange(9, dtype=torch.float32).view(3, 3)
    x = ids.repeat_interleave(cell, 0).repeat_interleave(cell, 1).expand(40, 1, 27, 27)
    tiles = jigsaw_tiles(x, cell, tile, True, gen())
    assert torch.equal(tiles.amin((2, 3, 4)), tiles.amax((2, 3, 4)))  # a tile stays in its cell
    assert torch.equal(tiles[:, :, 0, 0, 0], torch.arange(9.0).expand(40, 9))
    perms_np = maximal_hamming_permutations(100)
    shuffled, labels = shuffle_tiles(tiles, torch.as_tensor(np.array(perms_np)), gen(1))
    shown = shuffled[:, :, 0, 0, 0].long().numpy()  # which tile each position shows
    for b in range(40):
        (index,) = np.flatnonzero((perms_np == shown[b]).all(1))
        assert index == labels[b].item()
    assert len(set(labels.tolist())) > 10


def test_jigsaw_tiles_are_normalised_one_by_one():
    tiles = torch.rand(2, 9, 3, 5, 5) * torch.arange(1.0, 10.0).view(1, 9, 1, 1, 1)
    t = normalise_tiles(tiles)
    assert torch.allclose(t.mean((2, 3, 4)), torch.zeros(2, 9), atol=1e-5)
    assert torch.allclose(t.std((2, 3, 4), unbiased=False), torch.ones(2, 9), atol=1e-3)


def test_jigsaw_refuses_tiny_inputs():
    with pytest.raises(ConfigError, match="8x8 inputs are too small"):
        jigsaw_geometry(8)
    assert jigsaw_geometry(8, tile=2) == (2, 2)
    assert jigsaw_geometry(64) == (21, 18) and jigsaw_geometry(32) == (10, 9)
