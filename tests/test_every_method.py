"""Every registered method, trained a couple of steps the way other devices run it by default.

bf16 autocast is ``train.precision=auto`` on CUDA, and no GPU runs these tests: training each
method under bf16 autocast on the CPU is the nearest check that nothing in a loss assumes fp32
(SimCLR's logits once did: index_put refused to mix bf16 and fp32).
"""

import json
import math

import pytest

from replab.config import ConfigError, resolve
from replab.data.base import DataError
from replab.registry import method_names
from replab.train.loop import train

# the first of these a method accepts is where it trains (small inputs first, for speed)
CANDIDATE_DATA = ("digits", "sprites", "color_sprites", "moving_sprites", "tones", "bilingual_a")


@pytest.mark.parametrize("method", method_names())
def test_trains_under_bf16_autocast_with_finite_losses(tmp_path, method):
    few = {"train.steps": 2, "train.batch_size": 8, "train.log_every": 1}
    for data in CANDIDATE_DATA:
        out = tmp_path / data
        try:
            train(
                resolve(method, data, overrides=few | {"train.precision": "bf16"}),
                out,
                progress=False,
            )
        except (ConfigError, DataError):  # refused, with its one-line message: try the next
            assert not (out / "metrics.jsonl").exists()
            continue
        logs = [json.loads(line) for line in (out / "metrics.jsonl").open()]
        assert len(logs) == 2
        assert all(math.isfinite(r["loss"]) for r in logs), (data, logs)
        return
    raise AssertionError(f"{method} accepts none of {CANDIDATE_DATA}")
