"""The learning curve's policies: one RLlib policy meta-trained on the short-horizon twin of
the run, exported at each milestone (`controllers.meta_train`), and each snapshot deployed on
the ablation's evaluation seeds; with --resume, only snapshots not evaluated before."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.lib.curve_config import CurveConfig
from experiments.lib.recorded_runs import config_differences, read_recorded
from experiments.lib.seeds import ABLATION, evaluation_seeds
from experiments.lib.study import StudyFlags
from trainables.config import FinetuneConfig

if TYPE_CHECKING:
    from controllers.meta_train import Snapshot
    from envs.summary import RunSummary


def meta_train_snapshots(
    args: CurveConfig, cfg: FinetuneConfig, meta_cfg: FinetuneConfig, milestones: list[int],
    out: Path,
) -> list[Snapshot]:  # fmt: skip
    """The policy meta-trained on `meta_cfg` (proxy reward only), a snapshot in `out` at each
    milestone; snapshots saved there before are reused or continued from."""
    from controllers.algorithms import Resources, build_algo_config, parse_training_settings
    from controllers.meta_train import train_with_snapshots
    from trainables.models import MODEL_GROUPS

    algo_config = build_algo_config(
        args.algo,
        {"config": dataclasses.asdict(meta_cfg), "report_test": False},
        windows_per_episode=meta_cfg.windows,
        resources=Resources(num_env_runners=args.num_env_runners),
        episodes_per_iteration=args.episodes_per_iteration,
        use_lstm=args.use_lstm,
        training=parse_training_settings(args.algo, args.algo_config),
    )
    print(
        f"[asg] meta-training {args.algo} on {meta_cfg.windows} windows x "
        f"{meta_cfg.iters_per_window} iterations per run, snapshots at {milestones} runs",
        flush=True,
    )
    return train_with_snapshots(
        algo_config, milestones, out, MODEL_GROUPS[cfg.model], cfg.rate_levels
    )


def curve_methods(snapshots: list[Snapshot]) -> dict[str, Snapshot]:
    """The method name each snapshot's evaluation runs carry -> that snapshot, in milestone
    order: made once, so that runs and table rows find their snapshot by name."""
    return {f"learned @{s.milestone}": s for s in sorted(snapshots, key=lambda s: s.milestone)}


def evaluate_snapshots(
    curve: dict[str, Snapshot],
    cfg: FinetuneConfig,
    args: CurveConfig,
    flags: StudyFlags,
    encoding: str,
    out: Path,
) -> list[RunSummary]:
    """Each snapshot of `curve` (see `curve_methods`) deployed on the evaluation seeds; with
    --resume, snapshots that an earlier learning_curve.json in `out` already evaluated (same
    config and seeds) are not run again."""
    from controllers.spec import learned
    from controllers.tune_runs import run_controllers

    seeds = evaluation_seeds(ABLATION, args.seeds)
    earlier = _evaluated_before(out / "learning_curve.json", cfg, seeds) if flags.resume else []
    done = {r.method for r in earlier}
    todo = [m for m in curve if m not in done]
    runs = [r for r in earlier if r.method in curve]
    if todo:
        specs = [learned(m, curve[m].path, encoding, greedy=args.greedy) for m in todo]
        name = "evaluate_" + "_".join(str(curve[m].milestone) for m in todo)
        runs += run_controllers(
            specs, seeds, cfg, out / "tune", name, flags.resources(), flags.resume
        )
    return runs


def _evaluated_before(path: Path, cfg: FinetuneConfig, seeds: list[int]) -> list[RunSummary]:
    """Evaluation runs of an earlier learning_curve.json in the same folder, when that file
    evaluated the same fine-tuning config on the same seeds: `--resume` with more milestones
    evaluates only the new snapshots."""
    if not path.exists():
        return []
    old = read_recorded(path, f"--resume: {path}", "a learning_curve.json")
    if config_differences(old, cfg):
        return []
    by_method: dict[str, list[RunSummary]] = {}
    for r in old.runs:
        by_method.setdefault(r.method, []).append(r)
    return [r for rs in by_method.values() if sorted(r.seed for r in rs) == seeds for r in rs]
