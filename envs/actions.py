"""Action encodings: how an agent's action becomes one learning-rate multiplier per layer group.

- `multidiscrete` (ASG's): one of the run's multiplier levels per group.
- `box`: one continuous log10-multiplier per group in [LOG10_MIN, 0], for SAC-like algorithms.
- `discrete`: one of the levels, shared by every group, for DQN-like algorithms.

The levels are `FinetuneConfig.rate_levels`: 'log' (0 and the 1-2-5 series over three decades,
the default) or 'linear' (ASG's 0, 0.1, ..., 1). Both have 11 levels, so the action spaces have
the same shape either way.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

ENCODINGS = ("multidiscrete", "box", "discrete")
LEVEL_SETS: dict[str, np.ndarray] = {
    "log": np.array([0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
    "linear": np.linspace(0.0, 1.0, 11),
}
LEVELS = LEVEL_SETS["log"]
"""The default levels."""
LOG10_MIN = -3.0


def levels_of(name: str) -> np.ndarray:
    if name not in LEVEL_SETS:
        raise ValueError(f"rate levels {name!r} are not one of {tuple(LEVEL_SETS)}")
    return LEVEL_SETS[name]


def action_space(encoding: str, num_groups: int) -> spaces.Space:
    n = len(LEVELS)  # every level set has the same count
    if encoding == "multidiscrete":
        return spaces.MultiDiscrete([n] * num_groups)
    if encoding == "box":
        return spaces.Box(LOG10_MIN, 0.0, shape=(num_groups,), dtype=np.float32)
    if encoding == "discrete":
        return spaces.Discrete(n)
    raise ValueError(f"action encoding {encoding!r} is not one of {ENCODINGS}")


def to_multipliers(encoding: str, action, num_groups: int, levels=LEVELS) -> np.ndarray:
    """Per-group multipliers in [0, 1] for `action`."""
    levels = np.asarray(levels)
    if encoding == "multidiscrete":
        return levels[np.asarray(action, dtype=np.int64)]
    if encoding == "box":
        a = np.clip(np.asarray(action, dtype=np.float64), LOG10_MIN, 0.0)
        return np.power(10.0, a)
    return np.full(num_groups, levels[int(action)])


def nearest_levels(multipliers, levels=LEVELS) -> np.ndarray:
    """Index of the level nearest to each multiplier: in log10 space for levels spread over
    decades (0 stays 0), linearly otherwise."""
    m, lv = np.asarray(multipliers, dtype=np.float64), np.asarray(levels, dtype=np.float64)
    positive = lv[lv > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        floor = positive.min() / 2  # below half the smallest level, a multiplier reads as 0
        log = lambda v: np.log10(np.maximum(v, floor))  # noqa: E731
        return np.abs(log(m)[:, None] - log(lv)[None, :]).argmin(axis=1)
    return np.abs(m[:, None] - lv[None, :]).argmin(axis=1)


def from_multipliers(encoding: str, multipliers, levels=LEVELS) -> np.ndarray | int:
    """The action nearest to `multipliers` (for baselines that think in multipliers)."""
    m = np.asarray(multipliers, dtype=np.float64)
    if encoding == "box":
        return np.log10(np.clip(m, 10**LOG10_MIN, 1.0)).astype(np.float32)
    idx = nearest_levels(m, levels)
    if encoding == "discrete":
        return int(round(float(np.mean(idx))))
    return idx.astype(np.int64)
