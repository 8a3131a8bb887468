"""Generalisation to unseen factor combinations, after Schott et al. (ICLR 2022, "Visual
representation learning does not generalize strongly within the same domain").

Pure functions of factor points, their codes and the factor grid. A pool of factor points is
split four ways; readouts fitted on the training side predict every factor on the held-out side.

- ``random``: a quarter of the points held out at random (in distribution).
- ``composition``: of the two ordinal factors with the most values (circular ones, such as an
  angle over a full turn, left out: their ends meet), each cut into four equal bins of its
  range: points whose two bins are equal (the diagonal blocks, a quarter of the pairs) are held
  out. Every value of each factor is seen in training, some pairings never.
- ``interpolation``: values inside a factor's range held out: index i of a factor with at least
  five values, with i mod 4 = 2 (never an end). A point is held out when any factor takes one.
- ``extrapolation``: the top ``extrapolation_share`` (30%) of each such factor's range held
  out (circular factors left out: their top lies next to their bottom); a point is held out
  when any factor lies there, so training sees only lower values.

Scores, as that benchmark computes them: R^2 = 1 - MSE / Var for ordinal factors, with targets
scaled to [0, 1] by the grid (index / (size - 1)) and Var the variance of the factor over the
whole grid, so a held-out side narrower than the grid is not punished for its narrowness (0: no
better than predicting the grid's mean; negative: worse); accuracy for categorical factors.
Readouts: ``linear`` (ridge on standardised codes, its strength by leave-one-out; logistic
regression for categorical factors, as the linear probe) and ``mlp`` (one hidden layer of 256,
Adam, fixed epochs, all factors at once).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from replab.eval import probes

SPLITS = ("random", "composition", "interpolation", "extrapolation")
MIN_VALUES = 5  # factors with fewer values are not split by interpolation and extrapolation
HOLDOUT_RANDOM = 0.25


class SplitError(ValueError):
    """A split that leaves one side empty (one line, shown to the user)."""


class SplitNotApplicable(SplitError):
    """The data has no factor the split can hold values of (the split is skipped, noted)."""


def split_held_out(
    factors: np.ndarray,
    factor_sizes: Sequence[int],
    ordinal: Sequence[int],
    split: str,
    rng: np.random.Generator,
    extrapolation_share: float = 0.3,
    circular: Sequence[int] = (),
) -> np.ndarray:
    """Which rows of ``factors`` [n, F] (grid indices) the split holds out (bool [n]).
    ``ordinal``: the columns of ordered factors, of which ``circular`` wrap around (composition
    and extrapolation leave them out); randomness (``random`` only) from ``rng``."""
    factors = np.asarray(factors)
    sizes = np.asarray(factor_sizes)
    wide = [j for j in ordinal if sizes[j] >= MIN_VALUES]
    linear = [j for j in ordinal if j not in set(circular)]
    if split == "random":
        return rng.random(len(factors)) < HOLDOUT_RANDOM
    if split == "composition":
        if len(linear) < 2:
            raise SplitNotApplicable(
                "the composition split needs two ordinal factors that do not wrap around"
            )
        a, b = sorted(linear, key=lambda j: -sizes[j])[:2]
        bins = [factors[:, j] * 4 // sizes[j] for j in (a, b)]
        return bins[0] == bins[1]
    if split == "interpolation":
        held = [(factors[:, j] % 4 == 2) & (factors[:, j] < sizes[j] - 1) for j in wide]
    elif split == "extrapolation":
        if not 0 < extrapolation_share < 1:
            raise SplitError(f"extrapolation share must lie in (0, 1), got {extrapolation_share}")
        held = [factors[:, j] / (sizes[j] - 1) > 1 - extrapolation_share
                for j in wide if j in linear]  # fmt: skip
    else:
        raise SplitError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    if not held:
        raise SplitNotApplicable(
            f"the {split} split needs an ordinal factor of {MIN_VALUES}+ values"
        )
    return np.logical_or.reduce(held)


def check_sides(held_out: np.ndarray, split: str) -> None:
    """SplitError unless both sides of the split hold points."""
    if held_out.all():
        raise SplitError(f"the {split} split leaves nothing to train on")
    if not held_out.any():
        raise SplitError(f"the {split} split holds nothing out")


def grid_r2(pred: np.ndarray, true: np.ndarray, size: int) -> float:
    """1 - MSE / Var, targets as index / (size - 1), Var that of a uniform factor on the grid."""
    scale = max(size - 1, 1)
    var = (size**2 - 1) / 12 / scale**2  # variance of the uniform on {0, ..., size-1}, scaled
    return float(1 - np.mean((pred / scale - true / scale) ** 2) / var)


def linear_readout(
    train_codes, train_factors, test_codes, test_factors, factor_sizes, categorical, *, seed=0,
    device="cpu",
) -> list[float]:  # fmt: skip
    """Per factor: R^2 (ordinal) or accuracy (categorical, the linear probe's classifier)."""
    from sklearn.linear_model import RidgeCV

    mean, std = train_codes.mean(0), train_codes.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    z_train, z_test = (train_codes - mean) / std, (test_codes - mean) / std
    ordinal = [j for j in range(len(factor_sizes)) if j not in categorical]
    scores: dict[int, float] = {}
    if ordinal:  # one fit for every ordinal factor: one decomposition of the codes
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 7), alpha_per_target=True)
        pred = ridge.fit(z_train, train_factors[:, ordinal].astype(float)).predict(z_test)
        pred = pred.reshape(len(z_test), len(ordinal))
        for k, j in enumerate(ordinal):
            scores[j] = grid_r2(pred[:, k], test_factors[:, j], factor_sizes[j])
    for j in categorical:
        probe = probes.fit_linear_probe(train_codes, train_factors[:, j], seed=seed, device=device)
        scores[j] = probes.probe_accuracy(probe, test_codes, test_factors[:, j])
    return [scores[j] for j in range(len(factor_sizes))]
    return scores


def mlp_readout(
    train_codes, train_factors, test_codes, test_factors, factor_sizes, categorical, *, seed=0,
    device="cpu", hidden=256, steps=400, batch_size=256,
) -> list[float]:  # fmt: skip
    """One MLP (ReLU, ``hidden`` units) for every factor at once: a [0, 1] regression output per
    ordinal factor (MSE), a softmax per categorical one (cross-entropy); Adam 1e-3 for
    ``steps`` minibatches (a fixed cost, whatever the pool's size)."""
    gen = torch.Generator().manual_seed(seed)
    mean, std = train_codes.mean(0), train_codes.std(0)
    std = np.where(std > 1e-12, std, 1.0)

    def tensor(a):
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    x_train, x_test = tensor((train_codes - mean) / std), tensor((test_codes - mean) / std)
    scale = np.maximum(np.asarray(factor_sizes) - 1, 1)
    widths = [factor_sizes[j] if j in categorical else 1 for j in range(len(factor_sizes))]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, sum(widths))).to(device)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    targets = torch.as_tensor(train_factors, dtype=torch.long, device=device)
    cuts = np.cumsum([0, *widths])

    def loss_of(out, t):
        total = out.new_zeros(())
        for j in range(len(widths)):
            o = out[:, cuts[j] : cuts[j + 1]]
            if j in categorical:
                total = total + torch.nn.functional.cross_entropy(o, t[:, j])
            else:
                total = total + torch.nn.functional.mse_loss(o[:, 0], t[:, j].float() / scale[j])
        return total

    # minibatches this small run fastest on one thread (measured: 3.5x on 2 busy cores)
    with torch.enable_grad(), probes.threads_for(0, torch.device(device)):
        for _ in range(steps):
            idx = torch.randint(0, len(x_train), (batch_size,), generator=gen).to(device)
            opt.zero_grad()
            loss_of(net(x_train[idx]), targets[idx]).backward()
            opt.step()
    with torch.no_grad():
        out = net(x_test).cpu().numpy()
    scores = []
    for j, size in enumerate(factor_sizes):
        o = out[:, cuts[j] : cuts[j + 1]]
        if j in categorical:
            scores.append(float(np.mean(o.argmax(1) == test_factors[:, j])))
        else:
            scores.append(grid_r2(o[:, 0] * scale[j], test_factors[:, j], size))
    return scores


READOUTS = {"linear": linear_readout, "mlp": mlp_readout}


def generalisation_scores(
    codes: np.ndarray,
    factors: np.ndarray,
    factor_sizes: Sequence[int],
    categorical: Sequence[int],
    *,
    seed: int = 0,
    extrapolation_share: float = 0.3,
    splits: Sequence[str] = SPLITS,
    device: str = "cpu",
    circular: Sequence[int] = (),
) -> dict[str, dict[str, list[float]]]:
    """{split: {readout: score per factor}} for codes [n, d] of factor points [n, F]; a split
    with no factor to hold out is skipped with a warning, one with an empty side refused.
    ``circular``: the ordinal columns that wrap around (``split_held_out``)."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    ordinal = [j for j in range(len(factor_sizes)) if j not in set(categorical)]
    out = {}
    for i, split in enumerate(splits):
        rng = np.random.default_rng([seed, i])
        try:
            held = split_held_out(factors, factor_sizes, ordinal, split, rng,
                                  extrapolation_share, circular)  # fmt: skip
        except SplitNotApplicable as e:
            warnings.warn(f"{e}: skipped", RuntimeWarning, stacklevel=2)
            continue
        check_sides(held, split)
        train, test = ~held, held
        out[split] = {
            name: readout(codes[train], factors[train], codes[test], factors[test],
                          list(factor_sizes), set(categorical), seed=seed, device=device)
            for name, readout in READOUTS.items()
        }  # fmt: skip
    return out
