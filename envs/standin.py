"""A stand-in for the fine-tuning env with a known best action: does an algorithm learn at all?

`BestRateEnv` has SynToRealEnv's observation and action spaces for `num_groups` layer groups and
any action encoding, but a step costs microseconds: the reward of a window is
`1 - mean over groups of |multiplier - target|`, so the best policy sets every group to
`target` (0.3 by default, a level of every encoding) and earns 1 per window. A uniformly random
multidiscrete policy earns about 0.69. The observation carries the progress through the episode
and the multipliers just applied, as the real env's does.

    env_config = {"standin": True, "num_groups": 3}   # controllers.algorithms.make_env
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs import actions
from envs.spaces import OBS_FIELDS, observation_space

PROGRESS = OBS_FIELDS.index("progress")


class BestRateEnv(gym.Env):
    def __init__(
        self,
        num_groups: int = 3,
        windows: int = 4,
        target: float = 0.3,
        action_encoding: str = "multidiscrete",
        **_: Any,
    ) -> None:
        self.num_groups, self.windows, self.target = num_groups, windows, target
        self.action_encoding = action_encoding
        self.observation_space = observation_space(num_groups)
        self.action_space = actions.action_space(action_encoding, num_groups)
        self._window = 0

    def _obs(self, multipliers: np.ndarray) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[PROGRESS] = self._window / self.windows
        obs[len(OBS_FIELDS) :] = multipliers
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._window = 0
        return self._obs(np.ones(self.num_groups, dtype=np.float32)), {}

    def step(self, action):
        mult = actions.to_multipliers(self.action_encoding, action, self.num_groups)
        self._window += 1
        reward = 1.0 - float(np.abs(mult - self.target).mean())
        done = self._window >= self.windows
        return self._obs(mult.astype(np.float32)), reward, False, done, {}
