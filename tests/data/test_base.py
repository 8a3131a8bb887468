"""The data interface: splits, subsets that are data sets of their own, ground-truth subsets."""

import numpy as np
import pytest
import torch

from replab.data import GroundTruth, GroundTruthSubset, Subset, make_dataset
from replab.data.base import ArrayDataset


def test_a_subset_is_a_data_set_of_its_parents_examples():
    data = ArrayDataset(np.arange(40, dtype=np.uint8).reshape(10, 1, 2, 2), np.arange(10) % 2)
    sub = data.subset(np.array([7, 2, 5]))
    assert isinstance(sub, Subset) and not isinstance(sub, GroundTruth)
    assert len(sub) == 3 and sub.info == data.info
    assert torch.equal(sub.get_batch(np.array([1, 2]))["x"], data.get_batch(np.array([2, 5]))["x"])
    again = sub.subset(np.array([2]))  # a subset of a subset indexes the parent
    assert again.indices.tolist() == [5] and again.parent is data
    x = data.get_batch(np.arange(3))["x"]
    assert np.array_equal(sub.raw_features(x), data.raw_features(x))
    with pytest.raises(AttributeError):
        sub.no_such_attribute  # noqa: B018  (nothing is forwarded by magic)


def test_splits_are_fixed_and_disjoint():
    data = make_dataset("digits")
    train, test = data.split("train"), data.split("test")
    assert len(train) + len(test) == len(data) and not set(train.indices) & set(test.indices)
    assert np.array_equal(data.split("test").indices, test.indices)
    assert train.spec == "digits"


def test_ground_truth_subsets_keep_the_factors_and_sample_their_own_points():
    data = make_dataset("sprites")
    test = data.split("test")
    assert isinstance(test, GroundTruthSubset) and isinstance(test, GroundTruth)
    assert test.factor_names == data.factor_names and test.factor_sizes == data.factor_sizes
    factors = test.sample_factors(500, np.random.default_rng(0))
    assert set(data.factors_to_index(factors)) <= set(test.indices.tolist())
    assert torch.equal(test.observations(factors[:4]), data.observations(factors[:4]))
    # the whole grid samples everywhere
    grid = data.sample_factors(500, np.random.default_rng(0))
    assert not set(data.factors_to_index(grid)) <= set(test.indices.tolist())
