"""A trained learning-rate policy on its own: exported from RLlib, loaded safely, acting greedily.

RLlib checkpoints are pickles, and loading a pickle runs code from the file. So the run that
trains a policy exports it once, from the checkpoint it wrote itself, to a folder of plain data
that anyone can load without trusting whoever made it:

    policy.json        algorithm, layer-group names, action encoding, RLModule model config
    module_state.pt    the RLModule's tensors, read with torch.load(weights_only=True)

Deploying such a folder is the equivalent of ASG's `--agent_load_dir`: only the policy network is
rebuilt (no env runners, learners or replay buffers). It samples its actions, as ASG's deployed
policy does, from a generator seeded by the run's seed; `greedy=True` takes the most likely
action instead. To export a
checkpoint by hand::

    python -m controllers.saved_policy <RLlib checkpoint> <policy folder> --model <backbone>
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import tyro
from gymnasium import spaces
from ray.rllib.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
)

from controllers.algorithms import ACTION_ENCODING, algorithm_class
from controllers.atomic_files import atomic_directory, write_json
from envs.spaces import group_spaces, num_groups_of
from trainables.config import Model, RateLevels
from trainables.errors import ConfigError, load_failure

POLICY_FILE = "policy.json"
STATE_FILE = "module_state.pt"
FORMAT_VERSION = 1
RLLIB_MODULE_SUBDIR = (
    Path(COMPONENT_LEARNER_GROUP) / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
)
"""Where an Algorithm checkpoint keeps its (single-agent) RLModule, from RLlib's constants."""


def _flag(path: str | Path) -> str:
    return f"--policy-checkpoint {path}"


def _rllib_module_dir(checkpoint: Path) -> Path | None:
    """The RLModule folder inside an RLlib Algorithm checkpoint (or the folder itself)."""
    for candidate in (checkpoint / RLLIB_MODULE_SUBDIR, checkpoint):
        if (candidate / "class_and_ctor_args.pkl").exists():
            return candidate
    return None


def _default_module_spec(algo: str):
    return algorithm_class(algo).get_default_config().get_default_rl_module_spec()


def save_policy(module, out_dir: str | Path, groups: Sequence[str], **extra: Any) -> Path:
    """Write the RLModule `module` of a policy for an env whose model has layer groups
    `groups` to `out_dir` as plain data (`extra` goes into policy.json as is). The folder
    appears whole or not at all, replacing an earlier policy there; a folder that holds other
    files is refused rather than replaced."""
    algo = next(
        (a for a in ACTION_ENCODING if _default_module_spec(a).module_class is type(module)),
        None,
    )
    if algo is None:
        raise ConfigError(f"{type(module).__name__} is not a policy this project trains")
    if num_groups_of(module.observation_space) != len(groups):
        raise ConfigError(
            f"the policy is for {num_groups_of(module.observation_space)} layer groups, "
            f"not {len(groups)} ({', '.join(groups)})"
        )
    meta = {
        "format_version": FORMAT_VERSION,
        "algo": algo,
        "groups": list(groups),
        "action_encoding": _encoding_of(module.action_space),
        "model_config": module.model_config,
        **extra,
    }
    out = Path(out_dir).expanduser()
    if out.is_dir() and {p.name for p in out.iterdir()} - {POLICY_FILE, STATE_FILE}:
        raise ConfigError(
            f"{out}: holds more than a saved policy, which would replace it all; "
            f"save the policy to a new or empty folder"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_directory(out) as folder:  # a kill between the two files leaves no policy
        torch.save(state, folder / STATE_FILE)
        write_json(folder / POLICY_FILE, meta, indent=2)
    return out


def export_policy(
    checkpoint: str | Path, out_dir: str | Path, groups: Sequence[str], rate_levels: str
) -> Path:
    """Write the policy of an RLlib Algorithm checkpoint, trained on an env whose model has
    layer groups `groups` and whose actions pick from `rate_levels`, to `out_dir` (see
    `save_policy`).

    The checkpoint is unpickled, so only pass one you trust (one your own run wrote)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    checkpoint = Path(checkpoint).expanduser()
    module_dir = _rllib_module_dir(checkpoint)
    if module_dir is None:
        raise ConfigError(f"{checkpoint}: not an RLlib checkpoint (no {RLLIB_MODULE_SUBDIR})")
    module = RLModule.from_checkpoint(module_dir)
    try:
        return save_policy(
            module,
            out_dir,
            groups,
            rate_levels=rate_levels,
            exported_from=str(checkpoint.resolve()),
        )
    except ConfigError as exc:
        raise ConfigError(f"{checkpoint}: {exc}") from None


def build_module(algo: str, groups: Sequence[str], encoding: str, model_config: dict[str, Any]):
    """A freshly initialised RLModule of `algo` for an env with these layer groups."""
    spec = _default_module_spec(algo)
    spec.observation_space, spec.action_space = group_spaces(len(groups), encoding)
    spec.model_config = model_config
    spec.inference_only = False
    # RLlib's own modules build the deprecated RLModuleConfig in their __init__, and Ray logs
    # that to stderr each time: a policy checked before a one-line error would add a line.
    deprecation = logging.getLogger("ray._common.deprecation")
    level = deprecation.level
    deprecation.setLevel(logging.ERROR)
    try:
        return spec.build()
    finally:
        deprecation.setLevel(level)


def read_policy_meta(path: str | Path) -> dict[str, Any]:
    """The checked contents of a saved policy's policy.json; a one-line ConfigError if the
    folder is missing, an RLlib checkpoint (not exported) or malformed."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConfigError(f"{_flag(folder)}: no such file or folder")
    meta_file = folder / POLICY_FILE
    if not meta_file.is_file():
        if _rllib_module_dir(folder) is not None:
            raise ConfigError(
                f"{_flag(folder)}: an RLlib checkpoint, which is a pickle and runs code when "
                f"loaded; export its policy first (python -m controllers.saved_policy {folder} "
                f"<policy folder> --model <backbone>) and pass that folder"
            )
        raise ConfigError(f"{_flag(folder)}: not a saved policy (no {POLICY_FILE} inside)")
    try:
        meta = json.loads(meta_file.read_text())
        algo, groups, encoding = meta["algo"], meta["groups"], meta["action_encoding"]
        version, model_config = meta["format_version"], meta["model_config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"{meta_file}: malformed saved policy ({detail})") from None
    if version != FORMAT_VERSION:
        raise ConfigError(f"{meta_file}: format_version {version}, expected {FORMAT_VERSION}")
    if algo not in ACTION_ENCODING:
        raise ConfigError(f"{meta_file}: unknown algo {algo!r}")
    if not (isinstance(groups, list) and groups and all(isinstance(g, str) for g in groups)):
        raise ConfigError(f"{meta_file}: groups must be a non-empty list of layer-group names")
    if not isinstance(model_config, dict):
        raise ConfigError(f"{meta_file}: model_config must be an object")
    try:
        group_spaces(len(groups), encoding)
    except ValueError as exc:
        raise ConfigError(f"{meta_file}: {exc}") from None
    return meta


def load_module(path: str | Path, meta: dict[str, Any] | None = None):
    """The RLModule of a saved policy folder: rebuilt from policy.json (or `meta`, its contents
    as `read_policy_meta` returned them), weights read with `torch.load(weights_only=True)`;
    a one-line ConfigError if anything does not fit."""
    meta = meta or read_policy_meta(path)
    folder = Path(path).expanduser()
    try:
        module = build_module(
            meta["algo"], meta["groups"], meta["action_encoding"], meta["model_config"]
        )
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except Exception as exc:  # missing/corrupt/unsafe file, or tensors for another network
        raise ConfigError(f"{_flag(folder)}: cannot load the policy ({load_failure(exc)})") from exc
    return module


def check_deployable(path: str | Path, groups: Sequence[str], rate_levels: str) -> str:
    """Load the saved policy at `path` for an env with layer groups `groups` and multiplier
    levels `rate_levels` (a one-line ConfigError if it cannot) and return the action encoding
    it emits. A discrete action is an index into the levels, so a policy trained on one level
    set would pick other rates on another: refused. Policies saved before the levels were
    recorded were trained on ASG's linear levels."""
    meta = read_policy_meta(path)
    encoding, trained_on = meta["action_encoding"], meta.get("rate_levels", "linear")
    if encoding != "box" and trained_on != rate_levels:
        raise ConfigError(
            f"{_flag(Path(path))}: the policy picks from the {trained_on!r} rate levels, this "
            f"run's are {rate_levels!r} (pass --rate-levels {trained_on})"
        )
    RLModulePolicy(path, groups, encoding)
    return encoding


class RLModulePolicy:
    """Actions from an RLModule, sampled (seeded per run) or greedy; keeps recurrent state
    across one episode's windows."""

    def __init__(
        self,
        policy_dir: str | Path,
        groups: Sequence[str],
        action_encoding: str,
        greedy: bool = False,
    ):
        """The saved policy in folder `policy_dir`, for an env whose model has layer groups
        `groups` and takes `action_encoding` actions; a one-line ConfigError if it is for
        another."""
        meta = read_policy_meta(policy_dir)
        if meta["groups"] != list(groups) or meta["action_encoding"] != action_encoding:
            theirs = f"({', '.join(meta['groups'])}) with {meta['action_encoding']} actions"
            raise ConfigError(
                f"{_flag(policy_dir)}: the policy is for layer groups {theirs}, but this env has "
                f"({', '.join(groups)}) with {action_encoding} actions (another --model?)"
            )
        self._use(load_module(policy_dir, meta), action_encoding, greedy)

    @classmethod
    def from_module(cls, module, action_encoding: str, greedy: bool = False) -> RLModulePolicy:
        """A policy acting with a live RLModule (e.g. `algo.get_module()` during training)."""
        policy = cls.__new__(cls)
        policy._use(module, action_encoding, greedy)
        return policy

    def _use(self, module, action_encoding: str, greedy: bool) -> None:
        self.module = module
        self.module.eval()
        self.action_space = self.module.action_space
        self.action_encoding = action_encoding
        self.greedy = greedy
        self._state = None
        self._seed, self._window = 0, 0

    def reset(self, seed: int) -> None:
        self._state = self.module.get_initial_state() if self.module.is_stateful() else None
        self._seed, self._window = seed, 0

    def get_state(self) -> dict:
        """Where this episode stands (recurrent state, sampling position), as plain values."""
        state = None
        if self._state is not None:
            state = {k: torch.as_tensor(v) for k, v in self._state.items()}
        return {"seed": self._seed, "window": self._window, "recurrent": state}

    def set_state(self, state: dict) -> None:
        self._seed, self._window = int(state["seed"]), int(state["window"])
        self._state = state["recurrent"]

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
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
            if self.greedy:
                action = dist.to_deterministic().sample()
            else:  # reproducible: the draw depends only on (run seed, window)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self._seed * 1_000_003 + self._window)
                    action = dist.sample()
        self._window += 1
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


@dataclass(frozen=True)
class ExportArgs:
    """Export the policy of an RLlib checkpoint (trusted: it is unpickled) to a folder that
    --policy-checkpoint loads safely."""

    checkpoint: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="CHECKPOINT")]]
    """RLlib Algorithm checkpoint folder."""
    out_dir: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="OUT_DIR")]]
    """Folder to write policy.json and module_state.pt to."""
    model: Model
    """The backbone the policy was trained on."""
    rate_levels: RateLevels = "log"
    """The multiplier levels the policy was trained on (recorded in policy.json)."""


def main(argv: list[str] | None = None) -> int:
    from trainables.entry import parse_args
    from trainables.models import MODEL_GROUPS

    args = parse_args(ExportArgs, argv, None)
    out = export_policy(args.checkpoint, args.out_dir, MODEL_GROUPS[args.model], args.rate_levels)
    print(f"policy exported to {out}")
    return 0


if __name__ == "__main__":
    from trainables.entry import run_main

    run_main(main)
