"""Non-learned controllers with the same interface as a learned policy: observation -> action.

The layer group list always ends with the new task head, so "backbone" means every group but the
last. `hand_tuned` is the usual fine-tuning recipe (ASG's baseline): a small backbone rate and a
large head rate. Population-based training, the fourth baseline, lives in `controllers.pbt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from envs import actions
from trainables.errors import ConfigError


class Policy(Protocol):
    action_encoding: str

    def reset(self, seed: int) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray | int: ...


@dataclass
class FixedPolicy:
    """The same per-group multipliers at every window."""

    multipliers: list[float]
    action_encoding: str = "multidiscrete"

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        return actions.from_multipliers(self.action_encoding, self.multipliers)


@dataclass
class RandomPolicy:
    """A uniformly random multiplier level per group, drawn anew every window."""

    num_groups: int
    action_encoding: str = "multidiscrete"
    _rng: np.random.Generator = field(default_factory=np.random.default_rng, repr=False)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def get_state(self) -> dict:
        """The generator's position, as plain Python values (safe to save and load)."""
        return {"rng": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state["rng"]

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        levels = self._rng.integers(len(actions.LEVELS), size=self.num_groups)
        return actions.from_multipliers(self.action_encoding, actions.LEVELS[levels])


HAND_TUNED_BACKBONE = 0.1
BASELINES = ("constant", "hand_tuned", "random")


def make_baseline(name: str, num_groups: int) -> Policy:
    if name == "constant":  # one large rate for every layer
        return FixedPolicy([1.0] * num_groups)
    if name == "hand_tuned":
        return FixedPolicy([HAND_TUNED_BACKBONE] * (num_groups - 1) + [1.0])
    if name == "random":
        return RandomPolicy(num_groups)
    raise ConfigError(f"unknown baseline {name!r}; choose from: {', '.join(BASELINES)}")
