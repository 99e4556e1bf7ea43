"""What the pipeline writes: results.json, results.md and policy_schedule.png once the methods
have been compared, or, after an interrupted meta-training, where its checkpoints are."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from controllers.atomic_files import write_text
from envs.actions import levels_of
from experiments.lib.study import Study
from experiments.report import (
    learned_verdict,
    markdown_table,
    plot_schedules,
    sampled_level_entropy,
    summarise,
    write_json,
    write_results,
)
from trainables.config import FinetuneConfig, protocol

if TYPE_CHECKING:
    from envs.summary import RunSummary
    from experiments.lib.pipeline_config import PipelineConfig


def write_pipeline_results(
    study: Study,
    preset: str,
    cfg: FinetuneConfig,
    pipe: PipelineConfig,
    policy_dir: Path,
    runs: list[RunSummary],
    meta_s: float,
) -> str:
    """results.json, results.md and policy_schedule.png; returns the markdown table. The run
    is complete when every method ran on every seed."""
    rows, reference = summarise(runs)
    table = markdown_table(rows, reference)
    learned = [r.multipliers for r in runs if r.kind == "learned"]
    title = f"learned {pipe.algo} policy: per-group lr multiplier per window"
    plot_schedules(learned, study.out / "policy_schedule.png", title)
    entropy = sampled_level_entropy([r for r in runs if r.kind == "learned"])
    uniform = math.log(len(levels_of(cfg.rate_levels)))
    trained = (
        f"The learned policy's sampled levels: entropy {entropy:.2f} nats per group "
        f"(a uniform policy's: {uniform:.2f}; lower means it has stopped sampling uniformly).\n\n"
        if math.isfinite(entropy)
        else ""
    )
    wall = study.elapsed()
    write_results(
        study.out,
        "results",
        f"ASG results ({preset} preset)",
        study.command,
        f"Protocol: {protocol(cfg)}.\n\n"
        f"Real-target mean per-class accuracy at the end of each fine-tuning run; the reward "
        f"only ever saw the '{cfg.reward_proxy}' proxy-validation split.\n\n{table}\n"
        f"{learned_verdict(rows, reference)}\n{trained}"
        f"Wall time: {wall / 60:.1f} min (meta-training {meta_s / 60:.1f} min).\n",
        {
            "preset": preset,
            "protocol": protocol(cfg),
            "finetune_config": dataclasses.asdict(cfg),
            "pipeline_config": dataclasses.asdict(pipe),
            "policy_checkpoint": str(policy_dir),
            "table": [dataclasses.asdict(r) for r in rows],
            "sampled_level_entropy": entropy,
            "runs": [r.to_dict() for r in runs],
            "wall_s": {"meta_train": meta_s, "total": wall},
            "complete": len(runs) == pipe.expected_runs(),
        },
    )
    return table


def write_interrupted(study: Study, preset: str, stage: str) -> None:
    """What an interrupted meta-training leaves: where its checkpoints and curves are."""
    where = study.tune / "meta_train"
    write_json(
        study.out / "results.json",
        {"command": study.command, "preset": preset, "complete": False, "stopped": stage,
         "checkpoints_and_progress": str(where)},
    )  # fmt: skip
    write_text(
        study.out / "results.md",
        f"# ASG results ({preset} preset): interrupted\n\nCommand: `{study.command}`\n\n"
        f"Stopped during {stage}. No policy was evaluated. Checkpoints, progress.csv and "
        f"TensorBoard logs so far are under `{where}`; run the same command with `--resume` "
        f"to continue from the last checkpoint.\n",
    )
