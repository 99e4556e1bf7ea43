"""Meta-training with policy snapshots: the learning curve's raw material.

`train_with_snapshots` runs an RLlib algorithm until it has sampled the largest milestone's
number of fine-tuning runs (episodes), and exports the policy (see `controllers.saved_policy`)
the first time the count reaches each milestone, milestone 0 being the untrained policy. Only
proxy-based rewards are seen; the env is built with `report_test=False`, so meta-training never
computes real-test accuracy.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from controllers.saved_policy import POLICY_FILE, export_policy


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


def snapshot_dir(out_dir: Path, milestone: int) -> Path:
    return out_dir / f"policy_ep{milestone:04d}"


def train_with_snapshots(
    config: AlgorithmConfig,
    milestones: Sequence[int],
    out_dir: Path,
    groups: Sequence[str],
    log: Callable[[str], None] = print,
) -> list[Snapshot]:
    """Train until max(milestones) episodes, exporting the policy at each milestone. If every
    milestone's snapshot already exists in `out_dir` (an earlier call, finished or stopped
    later than these milestones), they are returned as they are."""
    index = out_dir / "snapshots.json"
    if index.exists():
        saved = {s["milestone"]: Snapshot(**s) for s in json.loads(index.read_text())}
        if set(milestones) <= set(saved) and all(
            (Path(saved[m].path) / POLICY_FILE).exists() for m in milestones
        ):
            log(f"[asg] reusing the meta-training snapshots in {out_dir}")
            return [saved[m] for m in sorted(set(milestones))]
    out_dir.mkdir(parents=True, exist_ok=True)
    algo = config.build_algo()
    snapshots: list[Snapshot] = []
    todo = sorted(set(milestones))
    t0 = time.perf_counter()
    episodes, iteration, ret = 0, 0, float("nan")
    try:
        while True:
            while todo and episodes >= todo[0]:
                m = todo.pop(0)
                # Through an RLlib checkpoint: the learner's full module (the env runners'
                # copies are inference-only, without the value function).
                with tempfile.TemporaryDirectory() as tmp:
                    algo.save_to_path(tmp)
                    path = export_policy(tmp, snapshot_dir(out_dir, m), groups)
                snap = Snapshot(
                    m, episodes, iteration, str(path), time.perf_counter() - t0, float(ret)
                )
                snapshots.append(snap)
                index.write_text(json.dumps([asdict(s) for s in snapshots], indent=2) + "\n")
                log(f"[asg] snapshot at {episodes} episodes -> {path}")
            if not todo:
                return snapshots
            result = algo.train()
            iteration += 1
            env = result.get("env_runners", {})
            episodes = int(env.get("num_episodes_lifetime", 0))
            ret = env.get("episode_return_mean", float("nan"))
            log(
                f"[asg] meta-train iter {iteration}: {episodes} runs, proxy return "
                f"{ret:+.3f}, {time.perf_counter() - t0:.0f}s"
            )
    finally:
        algo.stop()
