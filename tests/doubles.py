"""Test doubles for the RLlib tests: a stand-in env with a known best action, and a wrapper
that kills its own process once. They live with the tests, not in the package; RLlib's env
runners receive them by value (cloudpickle), so a runner needs no import path to `tests/`.

- `BestRateEnv` has SynToRealEnv's observation and action spaces for `num_groups` layer groups
  and any action encoding, but a step costs microseconds: the reward of a window is
  `1 - mean over groups of |multiplier - target|`, so the best policy sets every group to
  `target` and earns 1 per window (a uniformly random multidiscrete policy earns about 0.69).
  The observation carries the progress and the multipliers just applied, as the real env's.
- `NoisyRateEnv` has the same spaces and cost, and the real reward's landscape and noise as
  measured on the embedded benchmark: a best level, a small cost per level away, a cliff, and
  per-episode noise several times a one-level gap on one group (its docstring gives each number's
  source).
- `CrashOnce` hard-exits its process (as a lost node or an OOM kill would) at a given step, the
  first time only: a marker file records the crash, so the restarted process runs on.

Pass `env_creator=standin_env` (or `noisy_standin_env`, or `crashing_standin_env` with
`crash_once_file` in the env config) to `controllers.algorithms.build_algo_config`.
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


LOG_FLOOR = actions.LEVELS[1] / 2  # multiplier 0 sits one level below 0.001 (as nearest_levels)
_LOG_LEVELS = np.log10(np.maximum(actions.LEVELS, LOG_FLOOR))


def level_position(multipliers) -> np.ndarray:
    """Where each multiplier sits on the 'log' levels, in level steps: 0.1 is 7.0, 0.2 is 8.0;
    a box action between two levels gets a fraction (linear in log10 between them)."""
    log = np.log10(np.maximum(np.asarray(multipliers, dtype=np.float64), LOG_FLOOR))
    return np.interp(log, _LOG_LEVELS, np.arange(len(actions.LEVELS), dtype=np.float64))


class NoisyRateEnv(BestRateEnv):
    """The stand-in with the real reward's landscape and noise: SynToRealEnv's spaces for
    `num_groups` groups and any encoding, `windows` windows an episode, steps of microseconds.
    A group's multiplier is placed on the levels of `envs.actions.LEVEL_SETS['log']` (0, 0.001,
    0.002, 0.005, ..., 0.5, 1) by `level_position` (a box action falls between two levels).

    The numbers are the embedded benchmark's, `results/benchmark_landscape/runs.jsonl` (10 static
    schedules x 20 paired seeds, `python experiments/power_study.py --schedules landscape --seeds
    20 ...`; its episode return is the proxy-accuracy gain over a run of 8 windows):

    - `best_return` 0.238: the best uniform schedule, all:0.1 (`target`, level 7), returns
      0.2380 on average.
    - `cost_below` 0.013 per level below the target: all:0.05, one level down, returns 0.2252
      (paired difference to all:0.1 0.0128, sd 0.0076). Extrapolated linearly further down; no
      lower uniform schedule was measured, and the real loss there is likely steeper.
    - `cost_above` 0.0185 per level above: all:0.2, one level up and the cliff's edge, 0.2195.
    - `cliff` 0.5 and `wreck_return` -0.64: all:0.5 returns -0.638 (proxy accuracy falls to
      chance), 0.876 below the best. At or past the cliff a run is wrecked whatever the level;
      a box action between the edge (0.2) and the cliff ramps linearly from one to the other.
    - `episode_sd` 0.007: the sd of one schedule's return over seeds, 0.0044-0.0087 for the
      in-range schedules; the seed's share of it is 3.2%
      (`results/benchmark_landscape/reward_seed_share.txt`; two schedules' paired difference
      has sd 0.0076), so the noise here is drawn independently for every episode.
    - `edge_sd` 0.035: all:0.2's sd (0.107 and 0.137 among otherwise 0.21-0.25 returns).

    An episode's return is the mean over its windows and groups of the value of each group's
    level (the list above), plus Gaussian noise of sd `episode_sd`, rising towards `edge_sd`
    with the share of group-windows at the edge level. Both are spread evenly over the windows
    (a window's reward is its groups' mean value / `windows`, plus noise of sd / sqrt(windows)),
    drawn from the generator `reset(seed=...)` seeds. So the best policy, `target` on every
    group every window, returns `best_return`; all groups one level low return 0.225; one group
    of 3 one level low for the whole run costs 0.0043, less than the episode's noise; one group
    past the cliff for one window of 8 costs 0.88 / 24 = 0.037.

    Simplified against the real env: a window's cost lands in that window's reward (the real
    reward is the change in proxy accuracy, so a window's effect can show up later); every group
    has the same best level and costs (on the benchmark the head tolerates 0.5, the backbone
    does not); the noise is Gaussian (the edge's losses are a heavy tail). The observation holds
    the progress and the multipliers just applied, like `BestRateEnv`'s.
    """

    def __init__(
        self,
        num_groups: int = 3,
        windows: int = 8,
        target: float = 0.1,
        action_encoding: str = "multidiscrete",
        best_return: float = 0.238,
        cost_below: float = 0.013,
        cost_above: float = 0.0185,
        cliff: float = 0.5,
        wreck_return: float = -0.64,
        episode_sd: float = 0.007,
        edge_sd: float = 0.035,
        **_: Any,
    ) -> None:
        super().__init__(num_groups, windows, target, action_encoding)
        self.target_level = float(level_position(target))
        self.cliff_level = float(level_position(cliff))
        self.best_return, self.wreck_return = best_return, wreck_return
        self.cost_below, self.cost_above = cost_below, cost_above
        self.episode_sd, self.edge_sd = episode_sd, edge_sd

    def value(self, multipliers) -> np.ndarray:
        """Each group's expected episode return were it at this multiplier for the whole run."""
        pos = level_position(multipliers)
        off = pos - self.target_level
        value = self.best_return - self.cost_below * np.maximum(-off, 0.0)
        value = value - self.cost_above * np.maximum(off, 0.0)
        edge = self.cliff_level - 1.0  # the last level before the cliff
        past = np.clip(pos - edge, 0.0, 1.0)  # 0 up to the edge, 1 at or past the cliff
        edge_value = self.best_return - self.cost_above * max(edge - self.target_level, 0.0)
        return np.where(past > 0, (1 - past) * edge_value + past * self.wreck_return, value)

    def regret(self, multipliers) -> float:
        """Expected return lost, per episode, by a window with these multipliers against the
        best one (its share of the episode times `windows`: what the whole run would lose at
        these multipliers)."""
        return self.best_return - float(self.value(multipliers).mean())

    def step(self, action):
        mult = actions.to_multipliers(self.action_encoding, action, self.num_groups)
        self._window += 1
        at_edge = np.clip(1.0 - np.abs(level_position(mult) - (self.cliff_level - 1.0)), 0, 1)
        variance = self.episode_sd**2 + (self.edge_sd**2 - self.episode_sd**2) * at_edge.mean()
        noise = self.np_random.normal(0.0, np.sqrt(variance / self.windows))
        reward = float(self.value(mult).mean()) / self.windows + float(noise)
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


def noisy_standin_env(env_config: dict[str, Any]) -> gym.Env:
    """Env creator for RLlib: a `NoisyRateEnv` from the env config's keyword arguments."""
    return NoisyRateEnv(**env_config)


def crashing_standin_env(env_config: dict[str, Any]) -> gym.Env:
    """Env creator for RLlib: the stand-in, killing its process once (`crash_once_file`)."""
    kwargs = dict(env_config)
    marker = kwargs.pop("crash_once_file")
    return CrashOnce(BestRateEnv(**kwargs), marker)
