"""Fault injection for reliability tests: an env that kills its own process, once.

`CrashOnce` hard-exits its process (as a lost node or OOM kill would) at a given step, the first
time only: a marker file records that the crash happened, so the restarted process runs on.
"""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym


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
