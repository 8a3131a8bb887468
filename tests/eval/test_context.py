"""Encoding a factor grid once and looking codes up gives the scores that sampling and encoding
give, with one pass over the grid."""

import numpy as np
import torch

from replab.data.base import DataInfo, GroundTruthDataset
from replab.eval import disentanglement as dis
from replab.eval.context import EncodedGrid, sampled_encodings
from replab.eval.suite import SUITES
from replab.eval.symmetry import symmetry_scores


class Grid(GroundTruthDataset):
    """Observations: the factor indices as float32 [n, 3]; counts the images rendered."""

    name = "grid"
    label_factor = "a"
    factor_names = ["a", "b", "c"]
    factor_sizes = [3, 5, 7]
    info = DataInfo(shape=(3,))

    def __init__(self):
        self.rendered = 0

    def observations(self, factors):
        self.rendered += len(factors)
        return torch.as_tensor(np.asarray(factors), dtype=torch.float32)


def encode(x):
    """A fixed mixing, exact in float32 for small integers: codes depend on the factors only."""
    mix = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    return (torch.as_tensor(x, dtype=torch.float32) @ mix).numpy()


def test_table_holds_each_grid_point_once_in_index_order():
    data = Grid()
    grid = EncodedGrid(data, encode, batch_size=8)
    assert data.rendered == 3 * 5 * 7 and grid.codes.shape == (105, 3)
    factors = np.array([[2, 4, 6], [0, 0, 0], [1, 3, 2]])
    np.testing.assert_array_equal(grid.encode(grid.observations(factors)), encode(factors))


def test_scores_through_the_table_equal_the_direct_ones():
    data, table = Grid(), EncodedGrid(Grid(), encode)
    kw = {"num_train": 60, "num_eval": 30}
    direct = dis.beta_vae_score(data, encode, np.random.default_rng(3), batch_size=8, **kw)
    looked = dis.beta_vae_score(table, table.encode, np.random.default_rng(3), batch_size=8, **kw)
    assert direct == looked
    kw["num_variance_estimate"] = 50
    direct = dis.factor_vae_scores(data, encode, np.random.default_rng(4), batch_size=8, **kw)
    looked = dis.factor_vae_scores(
        table, table.encode, np.random.default_rng(4), batch_size=8, **kw
    )
    assert direct == looked
    direct = symmetry_scores(data, encode, np.random.default_rng(5), n_pairs=40)
    looked = symmetry_scores(table, table.encode, np.random.default_rng(5), n_pairs=40)
    assert direct["locality"] == looked["locality"]
    assert direct["equivariance"] == looked["equivariance"]


def test_only_the_full_suite_samples_more_than_the_sprites_grid():
    sprites_grid = 3 * 6 * 40 * 32 * 32
    assert sampled_encodings(SUITES["full"]) > sprites_grid
    assert sampled_encodings(SUITES["standard"]) < sprites_grid
