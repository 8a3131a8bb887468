"""A small DQN (Mnih et al. 2015) on fixed features of the observations: DARLA's second stage.

The Q-network is an MLP on ``features(obs, info)`` (a frozen encoder's means, standardised, or
the true factors for a check); experience replay, a target network copied every
``target_every`` updates, epsilon-greedy exploration annealed linearly, the Huber loss on the
one-step TD error, Adam. Features are cached by domain and state (``info["domain"]``,
``info["factors"]``): every observation is a function of the two, so the cache changes nothing
but the time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from replab.rl import DQN_STEPS

Features = Callable[[np.ndarray, dict], np.ndarray]


@dataclass
class DQNConfig:
    steps: int = DQN_STEPS  # environment steps of training
    hidden: int = 128
    lr: float = 1e-3
    gamma: float = 0.9
    batch_size: int = 64
    buffer: int = 20000
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_fraction: float = 0.5  # share of the steps over which epsilon falls
    target_every: int = 200
    learning_starts: int = 500


class CachedFeatures:
    """``features`` memoised by ``info["domain"]`` and the state in ``info["factors"]``: the
    same state renders differently in another domain."""

    def __init__(self, features: Features):
        self.features, self.cache = features, {}

    def __call__(self, obs: np.ndarray, info: dict) -> np.ndarray:
        key = (info["domain"], *(int(v) for v in info["factors"]))
        if key not in self.cache:
            self.cache[key] = np.asarray(self.features(obs, info), dtype=np.float32)
        return self.cache[key]


def q_network(n_in: int, n_actions: int, hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, n_actions))  # fmt: skip


def train_dqn(env, features: Features, cfg: DQNConfig, seed: int) -> torch.nn.Module:
    """A Q-network trained on ``env`` through ``features``; a function of ``seed``."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    obs, info = env.reset(seed=seed)
    f = features(obs, info)
    q = q_network(len(f), env.action_space.n, cfg.hidden)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    size = min(cfg.buffer, cfg.steps)
    states = np.zeros((size, len(f)), dtype=np.float32)
    nexts = np.zeros_like(states)
    actions = np.zeros(size, dtype=np.int64)
    rewards = np.zeros(size, dtype=np.float32)
    updates = 0
    for t in range(cfg.steps):
        eps = cfg.eps_start + (cfg.eps_end - cfg.eps_start) * min(
            1.0, t / max(1, cfg.eps_fraction * cfg.steps)
        )
        if rng.random() < eps:
            a = int(rng.integers(env.action_space.n))
        else:
            with torch.no_grad():
                a = int(q(torch.from_numpy(f)[None]).argmax(1))
        obs, r, terminated, truncated, info = env.step(a)
        f_next = features(obs, info)
        i = t % size
        states[i], actions[i], rewards[i], nexts[i] = f, a, r, f_next
        # the episodes are truncated, never terminated: bootstrap through the time limit
        f = f_next
        if terminated or truncated:
            obs, info = env.reset()
            f = features(obs, info)
        if t >= cfg.learning_starts:
            idx = rng.integers(0, min(t + 1, size), cfg.batch_size)
            s, a_b = torch.from_numpy(states[idx]), torch.from_numpy(actions[idx])
            with torch.no_grad():
                best = target(torch.from_numpy(nexts[idx])).max(1).values
                y = torch.from_numpy(rewards[idx]) + cfg.gamma * best
            loss = F.smooth_l1_loss(q(s).gather(1, a_b[:, None]).squeeze(1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            updates += 1
            if updates % cfg.target_every == 0:
                target.load_state_dict(q.state_dict())
    return q


def mean_return(env, features: Features, q: torch.nn.Module, episodes: int, seed: int) -> float:
    """The greedy policy's mean undiscounted return over ``episodes`` episodes."""
    total = 0.0
    for e in range(episodes):
        obs, info = env.reset(seed=seed * 100_003 + e)
        done = False
        while not done:
            with torch.no_grad():
                a = int(q(torch.from_numpy(features(obs, info))[None]).argmax(1))
            obs, r, terminated, truncated, info = env.step(a)
            total += r
            done = terminated or truncated
    return total / episodes


def random_return(env, episodes: int, seed: int) -> float:
    """A uniformly random policy's mean return (the floor)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for e in range(episodes):
        env.reset(seed=seed * 100_003 + e)
        done = False
        while not done:
            _, r, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            total += r
            done = terminated or truncated
    return total / episodes
