"""bench_objects: its rows read the results as written, and an unknown method is refused."""

import pytest

from replab.benchmarks import bench_objects


def test_summary_rows_quote_the_model_beside_its_baselines():
    result = {"suite": "standard", "results": {
        "monet": {"data": "tetrominoes", "steps": 10, "batch_size": 4, "train_seconds": 90.0,
                  "first_loss": 100.0, "last_loss": -5.25, "part": "segmentation",
                  "scores": {"model": {"ari": 0.5, "fg_ari": 0.25},
                             "random_masks": {"ari": 0.0, "fg_ari": 0.001}}},
        "gqn": {"data": "rooms", "steps": 20, "batch_size": 2, "train_seconds": 30.0,
                "first_loss": 1.5, "last_loss": 1.25, "part": "view_prediction",
                "scores": {"model": {"mse": 0.02, "psnr": 17.0},
                           "mean_context_view": {"mse": 0.03, "psnr": 15.5}}},
    }}  # fmt: skip
    assert bench_objects.summary_rows(result) == [
        ("objects: monet on tetrominoes, 10 steps, batch 4, seed 0, 1.5 min, standard suite",
         "ari 0.500, fg_ari 0.250; loss 100 -> -5.25", "random_masks: ari 0.000, fg_ari 0.001"),
        ("objects: gqn on rooms, 20 steps, batch 2, seed 0, 0.5 min, standard suite",
         "mse 0.020, psnr 17.000; loss 1.5 -> 1.25", "mean_context_view: mse 0.030, psnr 15.500"),
    ]  # fmt: skip


def test_an_unknown_method_is_refused():
    with pytest.raises(SystemExit):
        bench_objects.main(["--methods", "monet,nope"])
