"""DARLA's pieces: the environment's domains differ only in rendering, the DQN solves the task
when handed the true factors, the darla method trains its DAE first and its VAE after, and the
command refuses bad input in one line."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replab.cli import app
from replab.data import make_dataset
from replab.data.seek_avoid import DOMAINS, GRID
from replab.methods import configure, method_class
from replab.rl.dqn import CachedFeatures, DQNConfig, mean_return, random_return, train_dqn
from replab.rl.seek_avoid import SeekAvoidEnv


def rollout(domain, seed, actions):
    env = SeekAvoidEnv(domain)
    obs, info = env.reset(seed=seed)
    states, rewards, frames = [info["factors"]], [], [obs]
    for a in actions:
        obs, r, terminated, truncated, info = env.step(a)
        states.append(info["factors"])
        rewards.append(r)
        frames.append(obs)
        assert not terminated
    return np.array(states), rewards, frames


def test_source_and_target_differ_only_in_rendering():
    actions = np.random.default_rng(0).integers(0, 4, 20)
    s1, r1, f1 = rollout("source", 3, actions)
    s2, r2, f2 = rollout("target", 3, actions)
    assert np.array_equal(s1, s2) and r1 == r2  # same dynamics, same rewards
    # the same shapes in the same places: the frames agree wherever they are dark or white
    a, b = f1[0], f2[0]
    assert np.array_equal(a.max(0) > 0, b.max(0) > 0) and not np.array_equal(a, b)
    # and no colour pairs a shape in the target as it does in the source
    (src_heart, src_square), (tgt_heart, tgt_square) = DOMAINS["source"], DOMAINS["target"]
    assert not set(src_heart) & set(tgt_heart) and not set(src_square) & set(tgt_square)


def test_reaching_the_heart_pays_one_and_it_moves_away():
    env = SeekAvoidEnv()
    env.reset(seed=0)
    env.state[:] = [1, 1, 1, 2, 0, 0, 0, 0]  # agent at (1, 1), heart right of it
    _, r, _, _, info = env.step(3)
    assert r == 1.0 and tuple(info["factors"][:2]) == (1, 2)
    assert tuple(info["factors"][2:4]) not in {(1, 2), (0, 0)}
    env.state[:] = [0, 1, 2, 2, 0, 0, 0, 0]
    _, r, _, _, _ = env.step(2)  # into the square
    assert r == -1.0
    env.state[:] = [0, 0, 2, 2, 1, 1, 0, 0]
    _, r, _, _, info = env.step(0)  # up at the top edge: stays
    assert r == 0.0 and tuple(info["factors"][:2]) == (0, 0)


def test_the_frames_data_set_renders_the_environments_frames():
    env = SeekAvoidEnv("target")
    obs, info = env.reset(seed=5)
    data = make_dataset("seek_avoid_target")
    assert np.array_equal(data.observations(info["factors"][None]).numpy()[0], obs)
    assert make_dataset("seek_avoid").shifted_rendering == "seek_avoid_target"


def true_factors(obs, info):
    """The positions of agent, heart and square, scaled to [0, 1] (no colours)."""
    return (info["factors"][:6] / (GRID - 1)).astype(np.float32)


def test_the_dqn_solves_the_task_given_the_true_factors():
    env = SeekAvoidEnv()
    features = CachedFeatures(true_factors)
    q = train_dqn(env, features, DQNConfig(steps=3000), seed=0)
    floor = random_return(env, 30, 1)
    score = mean_return(env, features, q, 30, 1)
    # a heart every other step or so of 20 (measured: 9.4); a random walk finds as many squares
    assert abs(floor) < 1.0 and score > 6.0
    # the factors carry no colour: the same policy scores the same in the target domain
    assert mean_return(SeekAvoidEnv("target"), features, q, 30, 1) == score


def test_the_feature_cache_tells_the_domains_apart():
    calls = []

    def colour_of_frame(obs, info):
        calls.append(info["domain"])
        return obs.reshape(3, -1).max(1)

    features = CachedFeatures(colour_of_frame)
    _, source_info = SeekAvoidEnv("source").reset(seed=2)
    target_obs, target_info = SeekAvoidEnv("target").reset(seed=2)
    assert np.array_equal(source_info["factors"], target_info["factors"])
    features(np.zeros((3, 64, 64), np.float32), source_info)
    features(np.zeros((3, 64, 64), np.float32), source_info)  # the same state: cached
    got = features(target_obs, target_info)  # the same state in the other domain: computed
    assert calls == ["source", "target"] and np.array_equal(got, target_obs.reshape(3, -1).max(1))


def test_darla_trains_its_dae_first_then_its_vae_against_frozen_features():
    data = make_dataset("seek_avoid")
    cfg = configure("darla", "seek_avoid", overrides={"dae_steps": 5}).model
    torch.manual_seed(0)
    model = method_class("darla")(cfg, data.info)
    x = {"x": data.observations(data.sample_factors(4, np.random.default_rng(0)))}

    def grads(step):
        model.zero_grad()
        model(x, step)["loss"].backward()
        named = dict(model.named_parameters())
        return {n for n, p in named.items() if p.grad is not None and p.grad.abs().sum() > 0}

    dae = grads(0)
    assert dae and all(n.startswith("dae_") for n in dae)
    vae = grads(5)
    assert vae and not any(n.startswith("dae_") for n in vae)
    assert any(n.startswith("decoder") for n in vae) and any(n.startswith("to_mean") for n in vae)


runner = CliRunner()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--encoders", "darla,resnet"], "--encoders: unknown 'resnet'"),
        (["--encoder-steps", "10", "--dae-steps", "10"], "must be below --encoder-steps"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_darla_refuses_bad_input_in_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["darla", "--out", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert message in result.stderr and not (tmp_path / "d").exists()


def test_the_comparison_writes_each_encoders_returns_and_their_ratio(tmp_path):
    from replab.darla import run_darla

    summary = run_darla(tmp_path / "d", seeds=1, encoder_steps=2, dae_steps=1,
                        dqn=DQNConfig(steps=120, learning_starts=60), episodes=2,
                        encoders=("darla", "pixels"), log=lambda m: None)  # fmt: skip
    written = json.loads((tmp_path / "d" / "darla.json").read_text())
    assert set(written["encoders"]) == {"darla", "pixels"} and written["dqn_steps"] == 120
    for name, e in summary["encoders"].items():
        source, target = e["source"]["runs"][0], e["target"]["runs"][0]
        ratio = e["ratio"]["runs"][0]
        if source > 0:
            assert ratio == pytest.approx(target / source)
        else:  # no source return to transfer: no ratio (null in the file)
            assert np.isnan(ratio) and written["encoders"][name]["ratio"]["runs"] == [None]
    assert (tmp_path / "d" / "darla-0" / "model.safetensors").exists()
