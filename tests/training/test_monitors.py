"""Training monitors: RankMe's known answer, the collapse flag, the kNN vote, and the loop."""

import json
import math

import pytest
import torch
from torch import nn

from replab.data import make_dataset
from replab.methods import configure
from replab.methods.capabilities import Encoder
from replab.training.loop import train
from replab.training.monitors import Monitors, knn_accuracy, normalized_std, rankme


def test_rankme_gives_the_rank_of_an_embedding_with_equal_singular_values():
    g = torch.Generator().manual_seed(0)
    left, _ = torch.linalg.qr(torch.randn(200, 3, generator=g, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(10, 3, generator=g, dtype=torch.float64))
    z = left @ right.T  # rank 3, singular values 1, 1, 1
    assert rankme(z) == pytest.approx(3.0, rel=1e-4)
    weights = torch.tensor([3.0, 1.0], dtype=torch.float64)  # unequal: between 1 and 2
    p = weights / weights.sum()
    expected = math.exp(-(p * p.log()).sum())
    assert rankme(left[:, :2] * weights) == pytest.approx(expected, rel=1e-4)


class Constant(nn.Module, Encoder):
    """Every input to one code: a collapsed encoder."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(6))

    def encode(self, x):
        return self.w.expand(len(x), 6)


def test_the_collapse_monitor_flags_a_constant_encoder():
    monitors = Monitors(make_dataset("digits"), seed=0)
    figures = monitors(Constant())
    assert figures["monitor_std"] == 0.0 and figures["monitor_rank"] == pytest.approx(1, abs=1e-3)
    spread = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    assert normalized_std(spread) == pytest.approx(1 / 4, rel=0.15)  # about 1/sqrt(dim)


def test_knn_vote_by_hand():
    memory = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.0, 1.0]])
    assert knn_accuracy(memory, labels, queries, torch.tensor([0, 1, 0]), k=2) == pytest.approx(
        2 / 3
    )


def test_the_loop_logs_the_monitors_every_n_steps_at_a_small_cost(tmp_path):
    few = {"train.steps": 6, "train.log_every": 2, "train.batch_size": 16,
           "train.monitor_every": 4}  # fmt: skip
    train(configure("simclr", "digits", overrides=few), make_dataset("digits"), tmp_path / "r",
          progress=False)  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    monitored = [r["step"] for r in lines if "monitor_knn" in r]
    assert monitored == [4]  # the first log line past each multiple of 4 (6 is not past 8)
    r = lines[1]
    assert 0 <= r["monitor_knn"] <= 1 and r["monitor_std"] > 0 and r["monitor_rank"] >= 1
