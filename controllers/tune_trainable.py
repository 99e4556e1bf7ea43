"""Ray Tune function trainable: one fine-tuning run driven by a named controller.

It reports proxy-validation accuracy and the applied multipliers after every window and saves a
checkpoint with each report, so a restored trial continues mid-run. The real test accuracy is
reported once, with the last window (`done=True`). Checkpoints hold only tensors and plain
values and load with `torch.load(weights_only=True)`: no pickled code runs on restore.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs
import torch
from ray import tune

from controllers.baselines import FixedPolicy, Policy, RandomPolicy
from controllers.ray_metrics import record_run, record_window
from controllers.rollout import Resume, policy_state, run_episode
from controllers.saved_policy import RLModulePolicy
from controllers.spec import ControllerSpec
from envs.reuse import reused_env
from envs.summary import SCALAR_END_KEYS
from envs.syn_to_real import SynToRealEnv
from trainables.config import FinetuneConfig

STATE_FILE = "controller_run.pt"
FINAL_KEYS = (*SCALAR_END_KEYS, "score_gain")
"""What the env's last `info` reports (an `EndOfRun`, less its per-split dicts, which go out
flattened as proxy_acc/<split> and proxy_nll/<split>), copied into the trial's last result."""


def make_policy(
    spec: ControllerSpec, env: SynToRealEnv, pbt_multipliers: dict[str, float] | None = None
) -> Policy:
    """The policy a spec describes, for `env`. A PBT member is a fixed policy whose multipliers
    (`pbt_multipliers`, by group) Tune's PBT scheduler mutates between windows."""
    groups, levels = env.group_names, tuple(float(x) for x in env.levels)
    if spec.policy_dir is not None:
        return RLModulePolicy(spec.policy_dir, groups, env.action_encoding, greedy=spec.greedy)
    if spec.pbt:
        pbt = [float((pbt_multipliers or {})[g]) for g in groups]
        return FixedPolicy(pbt, env.action_encoding, levels)
    if spec.random:
        return RandomPolicy(len(groups), env.action_encoding, stream=spec.stream, levels=levels)
    fixed = spec.fixed_multipliers(len(groups))
    return FixedPolicy(fixed, env.action_encoding, levels)  # type: ignore[arg-type]


def plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays turned into Python numbers and tensors, the types
    that `torch.load(weights_only=True)` accepts."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_run_state(folder: Path, state: dict[str, Any]) -> None:
    torch.save(plain(state), folder / STATE_FILE)


def load_run_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / STATE_FILE, weights_only=True)


def finished_after(checkpoint: tune.Checkpoint, trial_id: str) -> dict[str, Any] | None:
    """The saved state of a finished run that this trial's storage holds in a checkpoint
    newer than `checkpoint`, or None. A driver killed after a trial's last checkpoint reached
    storage, but before Tune recorded it, restores that trial from the one before: the run is
    finished all the same and is not run again. Only the trial's own folder counts (a PBT
    member may restore a donor's checkpoint, whose later ones are the donor's run)."""
    fs, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
    folder, name = posixpath.split(path)
    if not re.search(rf"(^|_){re.escape(trial_id)}(_|$)", posixpath.basename(folder)):
        return None  # Tune's default folder names hold the id inside, ours at the end
    newer = sorted(
        (info.path for info in fs.get_file_info(pyarrow.fs.FileSelector(folder))
         if info.type == pyarrow.fs.FileType.Directory
         and info.base_name.startswith("checkpoint_") and info.base_name > name),
        reverse=True,
    )  # fmt: skip
    for candidate in newer:
        state_file = posixpath.join(candidate, STATE_FILE)
        if fs.get_file_info(state_file).type != pyarrow.fs.FileType.File:
            continue  # a copy the kill cut short (each file lands whole or not at all)
        with tune.Checkpoint(candidate, filesystem=fs).as_directory() as d:
            state = load_run_state(Path(d))
        if state["env"] is None:
            return state
    return None


def controller_trainable(config: dict[str, Any]) -> None:
    """Tune config keys: finetune (FinetuneConfig as a dict), controller (a ControllerSpec as a
    dict; its `finetune` overrides apply to this run), seed, and for PBT pbt_multipliers and
    checkpoint_every (checkpoint every n-th window and the last; 1 when absent)."""
    spec = ControllerSpec.from_config(config["controller"])
    cfg = FinetuneConfig(**{**config["finetune"], **spec.finetune})
    env = reused_env(cfg, spec.action_encoding)  # Tune reuses actors: kept between trials
    policy = make_policy(spec, env, config.get("pbt_multipliers"))
    seed = int(config["seed"])
    every = int(config.get("checkpoint_every", 1))

    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            saved = load_run_state(Path(d))
        if saved["env"] is not None:  # a newer, unrecorded checkpoint may hold its end
            saved = finished_after(checkpoint, tune.get_context().get_trial_id()) or saved
        if saved["env"] is None:  # a finished run restarted by --resume: report it again
            tune.report(saved["metrics"])
            return
        resume = Resume(saved["env"], saved["policy"], saved["window"], saved["return"])

    def report(window: int, info: dict[str, Any], reward: float, total: float, done: bool):
        record_window("evaluation", spec.method, info)
        if done:
            record_run("evaluation", spec.method)
        metrics = {
            "seed": seed,
            "window": window,
            "proxy_acc": info["proxy_acc"],
            "reward": reward,
            "episode_return": total,
            "diverged": info["diverged"],
            "window_seconds": info["window_seconds"],
            "teacher_seconds": info.get("teacher_seconds", 0.0),
            "done": done,
            **{f"multiplier/{k}": v for k, v in info["multipliers"].items()},
        }
        if done:
            metrics |= {k: info[k] for k in FINAL_KEYS if k in info}
            metrics |= {f"proxy_acc/{k}": v for k, v in info.get("proxy_accs", {}).items()}
            metrics |= {f"proxy_nll/{k}": v for k, v in info.get("proxy_nlls", {}).items()}
            if env.cfg.wise_alphas:  # the WiSE-FT alpha the run ended at (--wise-alphas)
                metrics["wise_alpha"] = env.run.wise_alpha
        if not done and window % every:
            tune.report(metrics)  # no checkpoint between PBT's perturbation boundaries
            return
        with tempfile.TemporaryDirectory() as d:
            state = {
                "env": env.get_state() if not done else None,
                "policy": policy_state(policy),
                "window": window,
                "return": total,
                "metrics": metrics,
            }
            save_run_state(Path(d), state)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    run_episode(env, policy, seed, spec.method, report, resume, kind=spec.kind)
