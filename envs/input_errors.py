"""Input errors inside an RLlib env runner: reported once to the driver instead of retried.

RLlib restarts an env runner whose env raises. That is right for a crash, but a corrupt image, or
a data folder that one node lacks, fails again after every restart, and once the restarts run
out `train()` waits forever. `make_reporting_env` turns such an error (an `ASGError`) into one
line appended to `error_file` (under the run's output folder, which a cluster shares) and an env
whose episodes end at once; the driver watches that file, stops meta-training and prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.spaces import group_spaces
from envs.syn_to_real import SynToRealEnv, resolve_config
from trainables.errors import ASGError

_ENV_ARGS = ("action_encoding", "diverge_penalty", "report_test", "report_timing")


def record_input_error(error_file: str | Path, error: ASGError) -> None:
    """Append `error` as one line to `error_file` (the driver reports the first)."""
    Path(error_file).parent.mkdir(parents=True, exist_ok=True)
    with open(error_file, "a", encoding="utf-8") as f:
        f.write(" ".join(str(error).split()) + "\n")


class InputErrorEnv(gym.Env):
    """Stands in for an env that could not be built: the same spaces, one-step episodes."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {"input_error": True}

    def step(self, action):
        obs = np.zeros(self.observation_space.shape, np.float32)
        return obs, 0.0, False, True, {"input_error": True}


class ReportInputErrors(gym.Wrapper):
    """Catches ASGError from the wrapped env's reset/step; records it and goes inert."""

    def __init__(self, env: gym.Env, error_file: str | Path) -> None:
        super().__init__(env)
        self.error_file = error_file
        self._inert: InputErrorEnv | None = None

    def _fail(self, error: ASGError) -> InputErrorEnv:
        record_input_error(self.error_file, error)
        self._inert = InputErrorEnv(self.observation_space, self.action_space)
        return self._inert

    def reset(self, **kwargs):
        if self._inert is not None:
            return self._inert.reset(**kwargs)
        try:
            return self.env.reset(**kwargs)
        except ASGError as error:
            return self._fail(error).reset(**kwargs)

    def step(self, action):
        if self._inert is not None:
            return self._inert.step(action)
        try:
            return self.env.step(action)
        except ASGError as error:
            return self._fail(error).step(action)


def make_reporting_env(env_kwargs: dict[str, Any], error_file: str | Path) -> gym.Env:
    """`SynToRealEnv(**env_kwargs)` whose input errors, at build time included, go to
    `error_file` instead of killing the env runner."""
    try:
        return ReportInputErrors(SynToRealEnv(**env_kwargs), error_file)
    except ASGError as error:
        record_input_error(error_file, error)
        cfg_args = {k: v for k, v in env_kwargs.items() if k not in _ENV_ARGS}
        from trainables.models import MODEL_GROUPS

        groups = MODEL_GROUPS[resolve_config(**cfg_args).model]
        encoding = env_kwargs.get("action_encoding", "multidiscrete")
        return InputErrorEnv(*group_spaces(len(groups), encoding))
