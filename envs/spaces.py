"""The env's observation and action spaces, computable without building data or a model.

Used by the env itself and by pre-flight checks (is this saved policy for this env?).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs import actions

# Every entry is scaled to be O(1) whatever the model, class count or guidance (see
# envs.syn_to_real), so a policy trained on one task can be deployed on another.
OBS_FIELDS = (
    "task_loss",  # mean cross-entropy / ln(num_classes): 1 = chance
    "guidance_loss",  # log(1 + mean unweighted guidance loss)
    "progress",
    "head_weight_mean",  # in units of the new head's initial weight std
    "head_weight_std",  # in units of the new head's initial weight std
    "proxy_acc",
)
LOSS_CAP = 100.0  # losses are clipped into the observation box; divergence is flagged separately
HEAD_CAP = 1000.0


def observation_space(num_groups: int) -> spaces.Box:
    low = np.array([0, 0, 0, -HEAD_CAP, 0, 0] + [0] * num_groups, dtype=np.float32)
    high = np.array(
        [LOSS_CAP, LOSS_CAP, 1, HEAD_CAP, HEAD_CAP, 1] + [1] * num_groups, dtype=np.float32
    )
    return spaces.Box(low, high, dtype=np.float32)


def group_spaces(num_groups: int, encoding: str) -> tuple[spaces.Box, spaces.Space]:
    """(observation space, action space) of the env for a model with `num_groups` layer
    groups and action `encoding`."""
    return observation_space(num_groups), actions.action_space(encoding, num_groups)


def num_groups_of(obs_space: spaces.Space) -> int:
    """How many layer groups an observation space was built for."""
    return int(obs_space.shape[0]) - len(OBS_FIELDS)
