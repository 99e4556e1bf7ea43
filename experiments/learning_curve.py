"""Does meta-training teach the controller anything? Real accuracy against meta-training budget.

Meta-trains one RLlib policy on the short-horizon twin of the chosen preset (the same data,
model, rates and windows, `--meta-iters-per-window` SGD iterations per window instead of the
preset's; proxy reward only, real test accuracy never computed), exports the policy after 0
(untrained), 16, 64 and 256 fine-tuning runs, then deploys each snapshot on the full preset on
the same evaluation seeds as experiments/ablation.py. With `--compare-with` an ablation.json
from those seeds, each point gets its paired difference to that file's best baseline.

How to run:
    python experiments/learning_curve.py --compare-with results/ablation_embedded/ablation.json
    python experiments/learning_curve.py --preset tiny --milestones 0 4 --seeds 2   # smoke

Writes learning_curve.md / .json / .png and the policy snapshots into --output-dir: a row per
snapshot, its real test accuracy (mean ± std over seeds) and proxy accuracy, and with
--compare-with its paired difference to the best baseline with a 95% interval. With --address
(or under `ray job submit --working-dir .`) meta-training and evaluation run on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from experiments.lib.curve_config import CurveConfig
from experiments.lib.study import StudyFlags, parse_study
from trainables.config import FinetuneConfig
from trainables.entry import run_main
from trainables.errors import ConfigError


@dataclass(frozen=True)
class CurveStudyFlags(StudyFlags):
    """Cluster, output and resume: the study flags, as the learning curve uses them."""

    concurrency: int = 2
    """Evaluation runs at once."""
    cpus_per_trial: float = 1
    """CPUs per evaluation run."""
    gpus_per_trial: float = 0
    """GPUs per evaluation run (fractions share a GPU)."""
    output_dir: str = "runs/learning_curve"
    """Results, snapshots and Tune logs."""
    resume: bool = False
    """Reuse finished snapshots and evaluation trials; with milestones beyond the saved
    snapshots, meta-training continues from the latest one and only new snapshots are
    evaluated."""


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, CurveConfig, StudyFlags, list[int]]:
    """(preset, fine-tuning config, curve settings, study flags, milestones) of a command line;
    no side effects."""
    preset, cfg, args, flags = parse_study(
        argv, __doc__, CurveConfig(), "learning curve", CurveStudyFlags()
    )
    milestones = sorted(set(args.milestones))
    if args.seeds == 0:
        from controllers.paired_stats import planned_seeds

        args = dataclasses.replace(args, seeds=planned_seeds(target=1.0)[0])
    if not milestones or milestones[0] < 0 or args.seeds < 2:
        raise ConfigError("--milestones must be >= 0 and --seeds >= 2")
    return preset, cfg, args, flags, milestones


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args, flags, milestones = parse(argv)

    from controllers.algorithms import action_encoding_for, parse_training_settings
    from experiments.lib.curve_results import write_curve_results
    from experiments.lib.curve_snapshots import (
        curve_methods,
        evaluate_snapshots,
        meta_train_snapshots,
    )
    from experiments.lib.meta_training import meta_iters
    from experiments.lib.recorded_runs import baseline_runs
    from experiments.lib.study import start_study

    baselines = baseline_runs(args.compare_with) if args.compare_with else None
    encoding = action_encoding_for(args.algo)
    parse_training_settings(args.algo, args.algo_config)  # one line, before Ray starts
    # The env runners while meta-training, the evaluation trials after: the more must fit.
    ray = flags.ray()
    if args.num_env_runners > flags.concurrency:
        ray = flags.ray(args.num_env_runners, "--num-env-runners")
    study = start_study("experiments/learning_curve.py", argv, cfg, ray, flags.output_dir)

    meta_cfg = cfg.replace(iters_per_window=meta_iters(args.meta_iters_per_window, cfg))
    snapshots = meta_train_snapshots(args, cfg, meta_cfg, milestones, study.out)
    # All meta-training time, that of a run continued here included.
    meta_s = max([study.elapsed(), *(s.meta_wall_s for s in snapshots)])

    curve = curve_methods(snapshots)
    runs = evaluate_snapshots(curve, cfg, args, flags, encoding, study.out)
    table = write_curve_results(
        study.out, study.command, preset, cfg, meta_cfg, args, flags, curve, runs, baselines,
        {"meta_train": meta_s, "total": study.elapsed()},
    )  # fmt: skip
    print("\n" + table)
    print(f"[asg] learning curve done; results in {study.out}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
