"""Test doubles for the RLlib tests: a stand-in env with a known best action, and a wrapper
that kills its own process once. They live with the tests, not in the package; RLlib's env
runners receive them by value (cloudpickle), so a runner needs no import path to `tests/`.

- `BestRateEnv` has SynToRealEnv's observation and action spaces for `num_groups` layer groups
  and any action encoding, but a step costs microseconds: the reward of a window is
  `1 - mean over groups of |multiplier - target|`, so the best policy sets every group to
  `target` and earns 1 per window (a uniformly random multidiscrete policy earns about 0.69).
  The observation carries the progress and the multipliers just applied, as the real env's.
- `CrashOnce` hard-exits its process (as a lost node or an OOM kill would) at a given step, the
  first time only: a marker file records the crash, so the restarted process runs on.

Pass `env_creator=standin_env` (or `crashing_standin_env`, with `crash_once_file` in the env
config) to `controllers.algorithms.build_algo_config`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray.cloudpickle

from envs import actions
from envs.spaces import OBS_FIELDS, observation_space

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

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


class CrashOnce(gym.Wrapper):
    def __init__(self, env: gym.Env, marker: str | Path, at_step: int = 1) -> None:
        super().__init__(env)
        self.marker = Path(marker)
        self.at_step = at_step
        self._steps = 0

    def reset(self, **kwargs):
        self._steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        self._steps += 1
        if self._steps >= self.at_step and not self.marker.exists():
            self.marker.write_text(f"crashed pid {os.getpid()}\n")
            os._exit(1)  # no cleanup, no exception: the process is simply gone
        return self.env.step(action)


def standin_env(env_config: dict[str, Any]) -> gym.Env:
    """Env creator for RLlib: a `BestRateEnv` from the env config's keyword arguments."""
    return BestRateEnv(**env_config)


def crashing_standin_env(env_config: dict[str, Any]) -> gym.Env:
    """Env creator for RLlib: the stand-in, killing its process once (`crash_once_file`)."""
    kwargs = dict(env_config)
    marker = kwargs.pop("crash_once_file")
    return CrashOnce(BestRateEnv(**kwargs), marker)
