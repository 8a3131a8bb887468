"""Every registered method: it trains on the first data set it declares it accepts, the way other
devices run it by default, and refuses one it does not, before writing anything.

bf16 autocast is ``train.precision=auto`` on CUDA, and no GPU runs these tests: training each
method under bf16 autocast on the CPU is the nearest check that nothing in a loss assumes fp32
(SimCLR's logits once did: index_put refused to mix bf16 and fp32).
"""

import json
import math

import pytest

from replab.config import ConfigError
from replab.data import make_dataset
from replab.methods import configure, method_class, method_names
from replab.training.loop import train

# the first of these a method accepts is where it trains (small inputs first, for speed)
CANDIDATE_DATA = (
    "digits", "sprites", "color_sprites", "moving_sprites", "tones", "bilingual_a", "rooms",
)  # fmt: skip


@pytest.fixture(scope="module")
def candidates():
    return {spec: make_dataset(spec) for spec in CANDIDATE_DATA}


def _verdicts(method, candidates):
    cls = method_class(method)
    return {spec: cls.data_problem(data.info, cls.Config()) for spec, data in candidates.items()}


@pytest.mark.parametrize("method", method_names())
def test_trains_under_bf16_autocast_with_finite_losses(tmp_path, method, candidates):
    accepted = [spec for spec, problem in _verdicts(method, candidates).items() if problem is None]
    assert accepted, f"{method} accepts none of {CANDIDATE_DATA}"
    few = {"train.steps": 2, "train.batch_size": 8, "train.log_every": 1}
    cfg = configure(method, accepted[0], overrides=few | {"train.precision": "bf16"})
    train(cfg, candidates[accepted[0]], tmp_path / "run", progress=False)
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(logs) == 2
    assert all(math.isfinite(r["loss"]) for r in logs), logs


@pytest.mark.parametrize("method", method_names())
def test_refuses_data_it_does_not_accept_before_writing(tmp_path, method, candidates):
    refused = {s: p for s, p in _verdicts(method, candidates).items() if p is not None}
    assert refused, f"{method} accepts every candidate: the refusal is untested"
    spec, problem = next(iter(refused.items()))
    assert "\n" not in problem
    with pytest.raises(ConfigError, match=f"^data: {method} ") as e:
        train(configure(method, spec), candidates[spec], tmp_path / "run", progress=False)
    assert problem in str(e.value)
    assert not (tmp_path / "run").exists()
    # the constructor refuses it with the same words (a method built outside the loop)
    with pytest.raises(ConfigError, match="^data: "):
        method_class(method)(method_class(method).Config(), candidates[spec].info)


@pytest.mark.parametrize(
    ("method", "spec", "words"),
    [("monet", "bilingual_a", "monet needs images"),
     ("gqn", "sprites", "gqn needs posed views of scenes")],
)  # fmt: skip
def test_the_cli_refuses_such_data_in_one_line_with_exit_status_2(tmp_path, method, spec, words):
    from typer.testing import CliRunner

    from replab.cli import app

    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["train", method, "--data", spec, "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr
    assert not out.exists()
