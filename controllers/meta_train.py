"""Meta-training with policy snapshots: the learning curve's raw material.

`train_with_snapshots` runs an RLlib algorithm until it has sampled the largest milestone's
number of fine-tuning runs (episodes), and exports the policy (see `controllers.saved_policy`)
the first time the count reaches each milestone, milestone 0 being the untrained policy. Only
proxy-based rewards are seen; the env is built with `report_test=False`, so meta-training never
computes real-test accuracy.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
)
from tensorboardX import SummaryWriter

from controllers.atomic_files import write_json
from controllers.saved_policy import POLICY_FILE, STATE_FILE, export_policy
from trainables.errors import ConfigError


@dataclass(frozen=True)
class Snapshot:
    milestone: int
    """The episode count asked for."""
    episodes: int
    """Episodes actually sampled when the snapshot was taken (>= milestone)."""
    iteration: int
    path: str
    meta_wall_s: float
    episode_return_mean: float
    """Mean proxy return of the training episodes of the last iteration (nan at 0)."""


def episodes_of(result: dict[str, Any]) -> int:
    """Fine-tuning runs (episodes) sampled so far, from an RLlib training result."""
    return int(result.get("env_runners", {}).get("num_episodes_lifetime", 0))


def snapshot_dir(out_dir: Path, milestone: int) -> Path:
    return out_dir / f"policy_ep{milestone:04d}"


def train_with_snapshots(
    config: AlgorithmConfig,
    milestones: Sequence[int],
    out_dir: Path,
    groups: Sequence[str],
    rate_levels: str,
    log: Callable[[str], None] = print,
) -> list[Snapshot]:
    """Train until max(milestones) episodes, exporting the policy at each milestone.

    Snapshots already in `out_dir` (from an earlier call) are reused: if they cover every
    milestone they are returned as they are; if the missing milestones all lie beyond the latest
    saved one, training continues from that snapshot's policy (its module weights, value function
    included; the optimizer's moments are not in a snapshot and restart), with the episode count
    and meta-training time carried on and the env runners reseeded (config seed + episodes so
    far), so that the continuation samples new fine-tuning runs. Otherwise training starts
    afresh."""
    index = out_dir / "snapshots.json"
    saved: dict[int, Snapshot] = {}
    if index.exists():
        saved = {s["milestone"]: Snapshot(**s) for s in json.loads(index.read_text())}
        saved = {m: s for m, s in saved.items() if (Path(s.path) / POLICY_FILE).exists()}
    wanted = sorted(set(milestones))
    if set(wanted) <= set(saved):
        log(f"[asg] reusing the meta-training snapshots in {out_dir}")
        return [saved[m] for m in wanted]
    latest = saved[max(saved)] if saved else None
    if latest is None or min(m for m in wanted if m not in saved) <= latest.milestone:
        latest, saved = None, {}
    out_dir.mkdir(parents=True, exist_ok=True)
    if latest is not None and config.seed is not None:
        # Fresh fine-tuning seeds for the continuation instead of a replay of the first runs'.
        config = config.copy(copy_frozen=False).debugging(seed=config.seed + latest.episodes)
    algo = config.build_algo()
    events = SummaryWriter(str(out_dir / "tensorboard"))  # tensorboard --logdir <out_dir>
    snapshots = sorted(saved.values(), key=lambda s: s.milestone)
    todo = [m for m in wanted if m not in saved]
    episodes, iteration, ret, wall0 = 0, 0, float("nan"), 0.0
    if latest is not None:
        load_policy_weights(algo, Path(latest.path))
        episodes, iteration, wall0 = latest.episodes, latest.iteration, latest.meta_wall_s
        log(f"[asg] continuing meta-training from {latest.path} ({episodes} runs)")
    t0 = time.perf_counter() - wall0
    offset = episodes  # RLlib's lifetime episode count restarts with a new Algorithm
    try:
        while True:
            while todo and episodes >= todo[0]:
                m = todo.pop(0)
                # Through an RLlib checkpoint: the learner's full module (the env runners'
                # copies are inference-only, without the value function).
                with tempfile.TemporaryDirectory() as tmp:
                    algo.save_to_path(tmp)
                    path = export_policy(tmp, snapshot_dir(out_dir, m), groups, rate_levels)
                snap = Snapshot(
                    m, episodes, iteration, str(path), time.perf_counter() - t0, float(ret)
                )
                snapshots.append(snap)
                write_json(index, [asdict(s) for s in snapshots], indent=2)
                log(f"[asg] snapshot at {episodes} episodes -> {path}")
            if not todo:
                return [s for s in snapshots if s.milestone in wanted]
            result = algo.train()
            iteration += 1
            episodes = offset + episodes_of(result)
            ret = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
            _write_events(events, result, episodes)
            log(
                f"[asg] meta-train iter {iteration}: {episodes} runs, proxy return "
                f"{ret:+.3f}, {time.perf_counter() - t0:.0f}s"
            )
    finally:
        events.close()
        algo.stop()


def _write_events(events, result: dict, episodes: int) -> None:
    """One TensorBoard point per training iteration, at its episode count: the return and the
    project's `env_runners/asg/*` metrics (multipliers, proxy accuracy, window time)."""
    runners = result.get("env_runners", {})
    scalars = {"episode_return_mean": runners.get("episode_return_mean")}
    scalars |= {k: v for k, v in runners.items() if k.startswith("asg/")}
    for key, value in scalars.items():
        if isinstance(value, int | float) and math.isfinite(value):
            events.add_scalar(f"meta_train/{key}", float(value), global_step=episodes)
    events.flush()


def load_policy_weights(algo, policy_dir: Path) -> None:
    """Put an exported policy's module weights into `algo`'s learner (and so its env runners).
    The key sets and shapes must match exactly (a one-line ConfigError otherwise): RLlib's own
    loader would skip what does not fit."""
    import torch

    state = torch.load(Path(policy_dir) / STATE_FILE, map_location="cpu", weights_only=True)
    path = (COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID)
    current = algo.get_state(components="/".join(path))
    for key in path:
        current = current[key]
    fits = set(current) == set(state) and all(
        tuple(current[k].shape) == tuple(state[k].shape) for k in state
    )
    if not fits:
        raise ConfigError(f"{policy_dir}: its policy does not fit this algorithm's module")
    nested: dict = {k: v.numpy() for k, v in state.items()}
    for key in reversed(path):
        nested = {key: nested}
    algo.set_state(nested)  # syncs the env runners' copies too


def start_from_policy(policy_dir: str, algorithm, **_) -> None:
    """`on_algorithm_init` callback (bind `policy_dir` with functools.partial): a fresh
    algorithm starts from a saved policy's weights. A trial restored from its own checkpoint
    gets this first and its checkpoint's weights after, so a resume is not reset."""
    load_policy_weights(algorithm, Path(policy_dir))
