"""The four splits against their definitions, the scores against known answers (codes that are
the factors themselves generalise with R^2 near 1; noise does not), and a split that leaves
nothing to train on refused in one line."""

import warnings

import numpy as np
import pytest

from replab.eval import generalisation as gen

SIZES = [3, 6, 40, 32, 32]  # dSprites: shape (categorical), scale, orientation, x, y
ORDINAL = [1, 2, 3, 4]


def grid_sample(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def held(split, factors, **kw):
    return gen.split_held_out(factors, SIZES, ORDINAL, split, np.random.default_rng(0), **kw)


def test_circular_factors_are_not_cut_by_composition_or_extrapolation():
    """dSprites' orientation wraps around (its top values lie next to its bottom ones): with it
    declared circular, composition pairs x and y, and extrapolation holds out by scale, x and y
    only; interpolation still uses it."""
    f = grid_sample()
    h = held("composition", f, circular=[2])
    assert np.array_equal(h, f[:, 3] * 4 // 32 == f[:, 4] * 4 // 32)
    h = held("extrapolation", f, circular=[2])
    top = [f[:, j] / (SIZES[j] - 1) > 0.7 for j in (1, 3, 4)]
    assert np.array_equal(h, np.logical_or.reduce(top))
    assert np.array_equal(held("interpolation", f, circular=[2]), held("interpolation", f))
    with pytest.raises(gen.SplitNotApplicable, match="wrap around"):
        gen.split_held_out(f, SIZES, [2, 3], "composition", np.random.default_rng(0), circular=[2])


def test_sprites_declare_orientation_circular():
    from replab.data import make_dataset

    data = make_dataset("sprites")
    assert data.circular_factors == ("orientation",)
    assert set(data.circular_factors) <= set(data.factor_names) - set(data.categorical_factors)


def test_composition_holds_out_pairings_and_keeps_every_value():
    f = grid_sample()
    h = held("composition", f)
    a, b = 2, 3  # the two ordinal factors with the most values: orientation (40) and x (32)
    assert np.array_equal(h, f[:, a] * 4 // 40 == f[:, b] * 4 // 32)
    train = f[~h]
    for j in (a, b):  # every value of each factor is seen in training...
        assert set(train[:, j]) == set(range(SIZES[j]))
    pairs = set(zip(train[:, a] * 4 // 40, train[:, b] * 4 // 32, strict=True))
    # ...but never a diagonal pairing
    assert not any(p == q for p, q in pairs)


def test_interpolation_holds_out_inner_values_and_extrapolation_the_top():
    f = grid_sample()
    inter = held("interpolation", f)
    for j in ORDINAL:  # held-out values are never seen in training, and never an end
        held_values = {v for v in range(SIZES[j]) if v % 4 == 2 and v < SIZES[j] - 1}
        assert held_values and not held_values & set(f[~inter][:, j])
        assert {0, SIZES[j] - 1} <= set(f[~inter][:, j])
    extra = held("extrapolation", f, extrapolation_share=0.3)
    for j in ORDINAL:
        assert (f[~extra][:, j] / (SIZES[j] - 1)).max() <= 0.7
    assert (np.max(f[extra][:, ORDINAL] / (np.array(SIZES)[ORDINAL] - 1), axis=1) > 0.7).all()


def test_random_holds_out_about_a_quarter():
    assert held("random", grid_sample()).mean() == pytest.approx(0.25, abs=0.03)


def test_grid_r2_by_hand():
    true = np.array([0, 1, 2, 3, 4])
    assert gen.grid_r2(true.astype(float), true, 5) == 1.0
    var = (25 - 1) / 12 / 16  # of the uniform on {0..4}, scaled to [0, 1]
    pred = true + 1.0
    assert gen.grid_r2(pred, true, 5) == pytest.approx(1 - (1 / 16) / var)


def test_codes_that_are_the_factors_generalise_and_noise_does_not():
    f = grid_sample(3000)
    onehot_shape = np.eye(3)[f[:, 0]]
    codes = np.concatenate([onehot_shape, f[:, 1:].astype(float)], axis=1)
    scores = gen.generalisation_scores(codes, f, SIZES, [0], seed=0)
    for split in gen.SPLITS:
        lin = scores[split]["linear"]
        assert lin[0] == 1.0  # shape read off its one-hot code
        assert min(lin[1:]) > 0.99, (split, lin)  # linear: exact even outside the training range
    noise = np.random.default_rng(1).normal(size=(3000, 8))
    bad = gen.generalisation_scores(noise, f, SIZES, [0], seed=0, splits=["composition"])
    assert max(bad["composition"]["linear"][1:]) < 0.05


def test_a_split_that_leaves_nothing_to_train_on_is_refused():
    f = np.array([[0, 5, 39, 31, 31]] * 50)  # every point at the top of every range
    with pytest.raises(gen.SplitError, match="leaves nothing to train on"):
        gen.generalisation_scores(np.ones((50, 2)), f, SIZES, [0], splits=["extrapolation"])
    with pytest.raises(gen.SplitError, match="unknown split"):
        held("sideways", f)


def test_splits_the_factors_cannot_make_are_skipped_with_a_note():
    sizes = [3, 4, 4]  # no ordinal factor of 5+ values: no interpolation, no extrapolation
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, s, 500) for s in sizes], axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = gen.generalisation_scores(f.astype(float), f, sizes, [0])
    assert list(scores) == ["random", "composition"]
    notes = sorted(str(w.message) for w in caught)
    assert notes == [f"the {s} split needs an ordinal factor of 5+ values: skipped"
                     for s in ("extrapolation", "interpolation")]  # fmt: skip
