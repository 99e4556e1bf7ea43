"""What the reward candidates write: reward_candidates.md (each candidate's within-seed rank
correlation with real accuracy, then every run) and reward_candidates.json."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from controllers.atomic_files import write_text
from experiments.lib.reward_config import RewardConfig
from experiments.lib.reward_scores import CandidateScore
from experiments.lib.study import Study, StudyFlags
from experiments.report import write_json
from trainables.config import FinetuneConfig

if TYPE_CHECKING:
    from envs.summary import RunSummary


def write_reward_results(
    study: Study,
    preset: str,
    cfg: FinetuneConfig,
    args: RewardConfig,
    flags: StudyFlags,
    scores: list[CandidateScore],
    runs: list[RunSummary],
    wall: float,
) -> str:
    """reward_candidates.md / .json; returns the candidates' markdown table."""
    table = (
        "| candidate reward | uses real labels | Spearman rho within seed (mean) | 95% CI "
        "| pooled rho |\n|---|---|---|---|---|\n"
    )
    table += "".join(
        f"| {r.candidate} | {'YES' if r.uses_real_labels else 'no'} "
        f"| {r.rho_within_seed:+.2f} | [{r.ci95[0]:+.2f}, {r.ci95[1]:+.2f}] "
        f"| {r.rho_pooled:+.2f} |\n"
        for r in scores
    )
    per_run = (
        "| schedule | seed | real acc | syn acc | syn NLL | fonts acc | few-shot acc | photo KL |\n"
    )
    per_run += "|---|---|---|---|---|---|---|---|\n" + "".join(
        f"| {r.method} | {r.seed} | {100 * r.test_acc:.1f} "
        f"| {100 * r.proxy_accs['synthetic']:.1f} | {r.proxy_nlls['synthetic']:.3f} "
        f"| {100 * r.proxy_accs['heldout_fonts']:.1f} "
        f"| {100 * r.proxy_accs['real_fewshot']:.1f} | {r.imagenet_kl:.2f} |\n"
        for r in sorted(runs, key=lambda r: (r.method, r.seed))
    )
    write_json(
        study.out / "reward_candidates.json",
        {"command": study.command, "finetune_config": dataclasses.asdict(cfg),
         "args": dataclasses.asdict(args) | dataclasses.asdict(flags),
         "candidates": [dataclasses.asdict(r) for r in scores],
         "runs": [r.to_dict() for r in runs], "wall_s": wall},
    )  # fmt: skip
    schedules = len(args.schedules())
    write_text(
        study.out / "reward_candidates.md",
        f"# Reward candidates ({preset} preset, {args.seeds} seeds, {schedules} schedules)\n\n"
        f"Command: `{study.command}`\n\nHow well each candidate reward ranks fine-tuning runs "
        f"by real mean per-class accuracy. Spearman rho is computed across schedules within "
        f"each seed and averaged over seeds; the interval resamples schedules "
        f"({args.bootstrap} bootstrap draws).\n\n{table}\n## Runs\n\n{per_run}\n"
        f"Wall time: {wall / 60:.1f} min.\n",
    )
    return table
