"""DARLA's seek-avoid task as a gymnasium environment (frames from ``data.seek_avoid``).

Each step the agent moves up, down, left or right on the 3x3 grid (a move off the grid leaves
it in place). Reaching the heart gives +1, the square -1; the object reached reappears on a free
cell in a new colour of its domain. An episode lasts ``max_steps`` steps (truncated, never
terminated). Source and target differ only in the rendering: the dynamics and rewards are the
same functions of the state, and the state carries no colour the rewards read.
``info["factors"]`` is the state as the data set's factor row (the true factors) and
``info["domain"]`` the domain that rendered the frame.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from replab.data.seek_avoid import DOMAINS, GRID, render_states

MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right


class SeekAvoidEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, domain: str = "source", max_steps: int = 20):
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {domain!r}")
        self.domain, self.max_steps = domain, max_steps
        self.observation_space = gym.spaces.Box(0.0, 1.0, (3, 64, 64), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.state = np.zeros(8, dtype=np.int64)
        self.t = 0

    def _free_cell(self, taken: list[tuple[int, int]]) -> tuple[int, int]:
        while True:
            cell = (int(self.np_random.integers(GRID)), int(self.np_random.integers(GRID)))
            if cell not in taken:
                return cell

    def _observe(self):
        obs = render_states(self.state[None], self.domain)[0]
        return obs, {"factors": self.state.copy(), "domain": self.domain}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        cells: list[tuple[int, int]] = []
        for _ in range(3):
            cells.append(self._free_cell(cells))
        colours = self.np_random.integers(2, size=2)
        self.state = np.array([*cells[0], *cells[1], *cells[2], *colours], dtype=np.int64)
        self.t = 0
        return self._observe()

    def step(self, action):
        dr, dc = MOVES[int(action)]
        s = self.state
        s[0] = min(max(s[0] + dr, 0), GRID - 1)
        s[1] = min(max(s[1] + dc, 0), GRID - 1)
        reward = 0.0
        agent = (int(s[0]), int(s[1]))
        for pos, colour, value in ((2, 6, 1.0), (4, 7, -1.0)):
            if agent == (int(s[pos]), int(s[pos + 1])):
                reward += value
                others = [agent, (int(s[6 - pos]), int(s[7 - pos]))]
                s[pos], s[pos + 1] = self._free_cell(others)
                s[colour] = self.np_random.integers(2)
        self.t += 1
        obs, info = self._observe()
        return obs, reward, False, self.t >= self.max_steps, info
