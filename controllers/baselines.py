"""Non-learned controllers with the same interface as a learned policy: observation -> action.

Which baselines exist, and with what multipliers, is in `controllers.spec`; population-based
training, which mutates a `FixedPolicy`'s multipliers between windows, is in
`controllers.tune_runs.run_pbt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from envs import actions


class Policy(Protocol):
    action_encoding: str

    def reset(self, seed: int) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray | int: ...


@dataclass
class FixedPolicy:
    """The same per-group multipliers at every window."""

    multipliers: list[float]
    action_encoding: str = "multidiscrete"
    levels: tuple[float, ...] = tuple(actions.LEVELS)
    """The env's multiplier levels (`env.levels`): a multiplier is sent as its nearest level."""

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        return actions.from_multipliers(self.action_encoding, self.multipliers, self.levels)


@dataclass
class RandomPolicy:
    """A uniformly random multiplier level per group, drawn anew every window."""

    num_groups: int
    action_encoding: str = "multidiscrete"
    stream: int = 0
    """Distinct streams draw distinct schedules for the same run seed."""
    levels: tuple[float, ...] = tuple(actions.LEVELS)
    _rng: np.random.Generator = field(default_factory=np.random.default_rng, repr=False)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, self.stream])

    def get_state(self) -> dict:
        """The generator's position, as plain Python values (safe to save and load)."""
        return {"rng": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state["rng"]

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        levels = np.asarray(self.levels)
        picked = levels[self._rng.integers(len(levels), size=self.num_groups)]
        return actions.from_multipliers(self.action_encoding, picked, levels)
