"""The raw-input baseline is computed once and read back: same numbers, any change misses."""

import json

import numpy as np
import pytest

from replab.eval import baseline_cache, probes


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(0, 3, 120), rng.integers(0, 3, 60)
    f_tr = rng.normal(size=(120, 5)) + y_tr[:, None]
    f_te = rng.normal(size=(60, 5)) + y_te[:, None]
    return f_tr, y_tr, f_te, y_te


def _probe(problem):
    return baseline_cache.cached_linear_probe(*problem, seeds=(0, 1), device="cpu")


def test_second_call_reads_the_cache_and_equals_the_computation(problem, monkeypatch):
    first = _probe(problem)
    direct = probes.linear_probe(*problem, seeds=(0, 1), device="cpu")
    assert first["0.1"]["scores"] == direct["0.1"]["scores"]
    assert first["1.0"]["mean"] == direct["1.0"]["mean"]

    def never(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(probes, "linear_probe", never)
    assert _probe(problem) == first


def test_changed_inputs_or_settings_miss_the_cache(problem, monkeypatch):
    _probe(problem)
    calls = []
    real = probes.linear_probe
    monkeypatch.setattr(probes, "linear_probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    f_tr, y_tr, f_te, y_te = problem
    changed = f_tr.copy()
    changed[0, 0] += 1e-9
    baseline_cache.cached_linear_probe(changed, y_tr, f_te, y_te, seeds=(0, 1), device="cpu")
    baseline_cache.cached_linear_probe(f_tr, y_tr, f_te, y_te, seeds=(0,), device="cpu")
    monkeypatch.setattr(probes, "MAX_ITER", probes.MAX_ITER + 1)
    _probe(problem)
    assert len(calls) == 3


def test_a_damaged_entry_is_recomputed(problem):
    first = _probe(problem)
    (entry,) = (baseline_cache.baseline_cache_dir() / "probes").glob("*.json")
    entry.write_text('{"0.01": ')  # half-written by someone else
    assert _probe(problem) == first
    assert json.loads(entry.read_text()) == first  # rewritten whole


def test_cache_can_be_switched_off(problem, monkeypatch, tmp_path):
    monkeypatch.setenv("REPLAB_CACHE", "off")
    assert baseline_cache.baseline_cache_dir() is None
    _probe(problem)
    monkeypatch.delenv("REPLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert baseline_cache.baseline_cache_dir() == tmp_path / "replab"
