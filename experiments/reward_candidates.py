"""Which reward should the controller maximise? Score candidate rewards before meta-training.

A reward is only useful if ranking fine-tuning runs by it ranks them by real accuracy. This
runs a spread of schedules (uniform multipliers from small to large, head only, hand-tuned and
random per-group schedules) on the same seeds, scores every run on every candidate at its end,
and reports, per candidate, the rank correlation with real-target accuracy *within a seed*
(across schedules: what a controller can change), averaged over seeds, with a bootstrap 95%
interval over schedules.

How to run:
    python experiments/reward_candidates.py                 # embedded preset, 3 seeds
    python experiments/reward_candidates.py --preset tiny --seeds 2 --random-schedules 1

Writes reward_candidates.md / .json into --output-dir: a row per candidate (does it use real
labels, its mean within-seed rho with the 95% interval, the pooled rho), then every run. Every
run starts from the same head warm-up for a given seed, so "final" and "final minus initial"
rank runs identically within a seed; the candidates are named by the change the reward sums
to. With --address (or under `ray job submit --working-dir .`) the runs go to a Ray cluster.
"""

from __future__ import annotations

from experiments.lib.reward_config import RewardConfig
from experiments.lib.study import StudyFlags, parse_study
from trainables.config import FinetuneConfig
from trainables.entry import run_main
from trainables.errors import ConfigError


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, RewardConfig, StudyFlags]:
    """(preset, fine-tuning config, own settings, study flags) of a command line; no side
    effects."""
    flags = StudyFlags(output_dir="runs/reward_candidates")
    preset, cfg, args, flags = parse_study(
        argv, __doc__, RewardConfig(), "reward candidates", flags
    )
    if args.seeds < 2:
        raise ConfigError("--seeds must be >= 2 (a correlation within one seed is not enough)")
    from controllers.spec import check_levels

    for spec in args.schedules():
        check_levels(spec, cfg, "--uniform")
    return preset, cfg, args, flags


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args, flags = parse(argv)

    from controllers.tune_runs import run_controllers
    from experiments.lib.reward_results import write_reward_results
    from experiments.lib.reward_scores import score_candidates
    from experiments.lib.seeds import REWARD_CANDIDATES, evaluation_seeds
    from experiments.lib.study import start_study

    study = start_study(
        "experiments/reward_candidates.py", argv, cfg, flags.ray(), flags.output_dir
    )
    seeds = evaluation_seeds(REWARD_CANDIDATES, args.seeds)
    runs = run_controllers(
        args.schedules(), seeds, cfg, study.tune, "spread", flags.resources(), flags.resume
    )
    scores = score_candidates(runs, args.bootstrap)
    wall = study.elapsed()
    table = write_reward_results(study, preset, cfg, args, flags, scores, runs, wall)
    print("\n" + table)
    print(
        f"[asg] reward candidates done in {wall / 60:.1f} min; results in {study.out}", flush=True
    )
    return 0


if __name__ == "__main__":
    run_main(main)
