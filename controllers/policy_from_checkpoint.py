"""A trained policy, loaded on its own from an RLlib checkpoint, driving a fresh fine-tuning run.

The equivalent of ASG's `--agent_load_dir`: only the RLModule is restored (no env runners,
learners or replay buffers), and it acts greedily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from trainables.errors import ConfigError

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


def find_module_dir(checkpoint: str | Path) -> Path:
    """The RLModule folder inside an Algorithm checkpoint (or the folder itself if it is one)."""
    path = Path(checkpoint).expanduser()
    if not path.exists():
        raise ConfigError(f"--policy-checkpoint {path}: no such file or folder")
    for candidate in (path / MODULE_SUBDIR, path):
        if (candidate / "class_and_ctor_args.pkl").exists() or (
            candidate / "module_state.pt"
        ).exists():
            return candidate
    raise ConfigError(
        f"--policy-checkpoint {path}: not an RLlib checkpoint (no {MODULE_SUBDIR} inside)"
    )


def load_module(checkpoint: str | Path):
    """The RLModule saved in an RLlib checkpoint; a one-line ConfigError if it cannot load."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    module_dir = find_module_dir(checkpoint)
    try:
        return RLModule.from_checkpoint(module_dir)
    except Exception as exc:  # a damaged or foreign checkpoint: say which, in one line
        raise ConfigError(
            f"--policy-checkpoint {module_dir}: cannot load RLModule ({exc})"
        ) from exc


def checkpoint_encoding(checkpoint: str | Path) -> str:
    """The action encoding a saved policy emits (so deploying it needs no --algo)."""
    return _encoding_of(load_module(checkpoint).action_space)


class RLModulePolicy:
    """Greedy actions from an RLModule; keeps recurrent state across one episode's windows."""

    def __init__(self, checkpoint: str | Path, action_space: spaces.Space, obs_space: spaces.Box):
        self.module = load_module(checkpoint)
        if self.module.observation_space != obs_space or self.module.action_space != action_space:
            raise ConfigError(
                f"--policy-checkpoint {checkpoint}: policy was trained on observation "
                f"{self.module.observation_space} / action {self.module.action_space}, but this "
                f"env has {obs_space} / {action_space} (different model, groups or encoding?)"
            )
        self.module.eval()
        self.action_space = action_space
        self.action_encoding = _encoding_of(action_space)
        self._state = None

    def reset(self, seed: int) -> None:
        self._state = self.module.get_initial_state() if self.module.is_stateful() else None

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray | int:
        from ray.rllib.core.columns import Columns

        batch = {Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)[None]}
        if self._state is not None:
            batch[Columns.STATE_IN] = {k: torch.as_tensor(v)[None] for k, v in self._state.items()}
            batch[Columns.OBS] = batch[Columns.OBS][:, None]  # [B, T=1, obs]
        out = self.module.forward_inference(batch)
        if self._state is not None:
            self._state = {k: v[0] for k, v in out[Columns.STATE_OUT].items()}
        if Columns.ACTIONS in out:  # e.g. DQN's greedy head
            action = out[Columns.ACTIONS]
        else:
            dist_cls = self.module.get_inference_action_dist_cls()
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic()
            action = dist.sample()
        action = np.asarray(action.reshape(-1).cpu().numpy() if action.ndim else action)
        return _to_env_action(self.action_space, action)


def _encoding_of(space: spaces.Space) -> str:
    if isinstance(space, spaces.MultiDiscrete):
        return "multidiscrete"
    if isinstance(space, spaces.Discrete):
        return "discrete"
    return "box"


def _to_env_action(space: spaces.Space, action: np.ndarray) -> np.ndarray | int:
    if isinstance(space, spaces.Discrete):
        return int(action.reshape(-1)[0])
    if isinstance(space, spaces.MultiDiscrete):
        return action.reshape(space.shape).astype(np.int64)
    # RLlib's default normalize_actions: the module acts in [-1, 1]; map back to the box.
    a = np.clip(action.reshape(space.shape), -1.0, 1.0)
    return (space.low + (a + 1.0) * 0.5 * (space.high - space.low)).astype(np.float32)
