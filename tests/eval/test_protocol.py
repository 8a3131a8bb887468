"""evaluate() on images, end to end: which parts run, their numbers against the metric functions
called by hand on the same sample, and eval.json written and read back."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from replab.data import make_dataset
from replab.data.base import DataInfo, GroundTruthDataset
from replab.eval import probes
from replab.eval.context import EvaluationError, sample_indices
from replab.eval.protocol import SUITES, evaluate, read_eval, write_eval
from replab.methods import configure
from replab.training.loop import train

TINY = dataclasses.replace(
    SUITES["quick"],
    name="tiny",
    n_train=300,
    n_test=150,
    dis_train=300,
    dis_test=150,
    score_train=20,
    score_eval=10,
    variance_points=300,
    symmetry_pairs=50,
    dci_train=100,
    dci_test=50,
    attack_examples=30,
    attack_steps=3,
    blackbox_examples=10,
    blackbox_queries=20,
    generalisation_points=300,
    transfer_points=200,
)
QUIET = {"log": lambda message: None}


class Bars(GroundTruthDataset):
    """A small factor grid of 8x8 images: a bar or a block (shape), at one of 4 places, in one
    of 5 brightnesses; 60 images, so the protocol encodes the grid once and looks codes up."""

    name = "bars"
    factor_names = ["shape", "place", "brightness"]
    factor_sizes = [3, 4, 5]
    label_factor = "shape"
    categorical_factors = ("shape",)
    info = DataInfo(shape=(1, 8, 8), num_classes=3)

    def observations(self, factors):
        f = np.asarray(factors)
        x = np.zeros((len(f), 1, 8, 8), dtype=np.float32)
        for i, (shape, place, bright) in enumerate(f):
            line, block, whole = slice(place, place + 1), slice(place, place + 3), slice(0, 8)
            rows, cols = [(line, whole), (whole, line), (block, block)][shape]
            x[i, 0, rows, cols] = 0.2 + 0.2 * bright
        return torch.from_numpy(x)


@pytest.fixture(scope="module")
def bars():
    return Bars()


@pytest.fixture(scope="module")
def run(tmp_path_factory, bars):
    few = {"train.steps": 4, "train.batch_size": 8, "train.log_every": 2}
    cfg = configure("beta_vae", "digits", overrides=few)  # digits' shape; trained on the bars
    return train(cfg, bars, tmp_path_factory.mktemp("runs") / "bvae", progress=False)


@pytest.fixture(scope="module")
def result(run, bars):
    return evaluate(run, bars, TINY, seed=3, **QUIET)


def test_every_part_that_applies_runs_and_no_other(result):
    assert list(result.parts) == [
        "linear_probe",
        "baselines",
        "knn",
        "clustering",
        "disentanglement",
        "factor_probes",
        "symmetry",
        "figures",
        "robustness",
        "generalisation",
    ]  # no word queries: a VAE has no token vectors; no transfer: bars name no other rendering
    assert result.representation_dim == 10 and result.dataset == "bars"
    # 60 grid points, far fewer than the scores sample: the grid was encoded once
    assert set(result.seconds) == {"features", "grid_encoding", *result.parts}
    scores = result.parts["disentanglement"].scores
    assert set(scores) >= {"beta_vae", "factor_vae", "mig", "dci_disentanglement", "sap"}
    undefined = [k for k, v in scores.items() if not math.isfinite(v)]
    notes = " ".join(result.notes.get("disentanglement", []))
    assert all(k.split("_")[0] in notes.lower().replace("-", "_") for k in undefined), notes


def test_probe_and_knn_equal_the_functions_on_the_same_sample(run, bars, result):
    # the sample, drawn by hand as the protocol documents it: train indices, then test indices
    rng = np.random.default_rng(3)
    train_split, test_split = bars.split("train"), bars.split("test")
    tr = train_split.get_batch(sample_indices(len(train_split), TINY.n_train, rng))
    te = test_split.get_batch(sample_indices(len(test_split), TINY.n_test, rng))
    with torch.no_grad():  # one call of encode each, not the protocol's batches
        z_tr = run.model.encode(tr["x"]).double().numpy()
        z_te = run.model.encode(te["x"]).double().numpy()
    y_tr, y_te = tr["y"].numpy(), te["y"].numpy()
    by_hand = probes.linear_probe(z_tr, y_tr, z_te, y_te, seeds=TINY.seeds)
    for fraction, score in result.parts["linear_probe"].curve.items():
        assert score.mean == pytest.approx(by_hand[fraction]["mean"], abs=1e-9)
        assert score.n_labels == by_hand[fraction]["n_labels"]
    knn = probes.knn_accuracy(z_tr, y_tr, z_te, y_te)
    assert result.parts["knn"].accuracy == pytest.approx(knn)
    assert set(result.parts["baselines"].curves) == {"pixels", "random_encoder"}


def test_the_same_seed_gives_the_same_numbers(run, bars, result):
    again = evaluate(run, bars, TINY.only(("linear_probe", "knn")), seed=3, **QUIET)
    assert list(again.parts) == ["linear_probe", "knn"]
    assert again.parts["knn"].accuracy == result.parts["knn"].accuracy
    assert again.parts["linear_probe"].to_json() == result.parts["linear_probe"].to_json()


def test_eval_json_and_figures_are_written_and_read_back(run, result):
    path = write_eval(run.dir, result)
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in eval.json"))  # strict JSON
    for rel in result.parts["figures"].paths.values():
        assert (run.dir / rel).read_bytes().startswith(b"\x89PNG")
    back = read_eval(run.dir)
    assert back.problems == [] and list(back.parts) == list(result.parts)
    assert back.to_json() == json.loads(text)
    assert back.leaderboard()["kNN"] == result.parts["knn"].accuracy


def test_runs_and_data_that_cannot_be_evaluated_are_refused(run, bars, tmp_path):
    with pytest.raises(EvaluationError, match="shape"):
        evaluate(run, make_dataset("sprites"), TINY, **QUIET)
    with pytest.raises(EvaluationError, match="unknown part 'colour'"):
        evaluate(run, bars, TINY.only(("colour",)), **QUIET)
    cfg = configure("gan", "digits", overrides={"train.steps": 1, "train.batch_size": 4})
    gan = train(cfg, make_dataset("digits"), tmp_path / "gan", progress=False)
    with pytest.raises(EvaluationError, match="no encoder"):
        evaluate(gan, make_dataset("digits"), TINY, **QUIET)
