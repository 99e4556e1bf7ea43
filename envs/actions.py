"""Action encodings: how an agent's action becomes one learning-rate multiplier per layer group.

- `multidiscrete` (ASG's): one of 11 multipliers {0, 0.1, ..., 1.0} per group.
- `box`: one continuous log10-multiplier per group in [LOG10_MIN, 0], for SAC-like algorithms.
- `discrete`: one of the 11 multipliers, shared by every group, for DQN-like algorithms.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

ENCODINGS = ("multidiscrete", "box", "discrete")
LEVELS = np.linspace(0.0, 1.0, 11)
LOG10_MIN = -3.0


def action_space(encoding: str, num_groups: int) -> spaces.Space:
    if encoding == "multidiscrete":
        return spaces.MultiDiscrete([len(LEVELS)] * num_groups)
    if encoding == "box":
        return spaces.Box(LOG10_MIN, 0.0, shape=(num_groups,), dtype=np.float32)
    if encoding == "discrete":
        return spaces.Discrete(len(LEVELS))
    raise ValueError(f"action encoding {encoding!r} is not one of {ENCODINGS}")


def to_multipliers(encoding: str, action, num_groups: int) -> np.ndarray:
    """Per-group multipliers in [0, 1] for `action`."""
    if encoding == "multidiscrete":
        return LEVELS[np.asarray(action, dtype=np.int64)]
    if encoding == "box":
        a = np.clip(np.asarray(action, dtype=np.float64), LOG10_MIN, 0.0)
        return np.power(10.0, a)
    return np.full(num_groups, LEVELS[int(action)])


def from_multipliers(encoding: str, multipliers) -> np.ndarray | int:
    """The action nearest to `multipliers` (for baselines that think in multipliers)."""
    m = np.asarray(multipliers, dtype=np.float64)
    if encoding == "box":
        return np.log10(np.clip(m, 10**LOG10_MIN, 1.0)).astype(np.float32)
    idx = np.abs(m[:, None] - LEVELS[None, :]).argmin(axis=1)
    if encoding == "discrete":
        return int(round(float(np.mean(idx))))
    return idx.astype(np.int64)
