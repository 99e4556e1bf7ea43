"""ASG's ablation table on the embedded benchmark: which ingredient buys how much real accuracy.

How to run:
    python experiments/ablation.py                          # every row, embedded preset
    python experiments/ablation.py --rows hand_tuned "hand_tuned (no KL)" scratch --seeds 3
    python experiments/ablation.py --policy-checkpoint runs/asg/policy
    python experiments/ablation.py --seeds 22 --reuse results/ablation_b48/ablation.json  # grow
    python experiments/ablation.py --preset tiny --rows hand_tuned "uniform 0.1" --seeds 2  # smoke

Every row gets the same fine-tuning budget (the preset's windows x iterations) and the same
evaluation seeds. The `learned` row needs --policy-checkpoint (a policy meta-trained by
asg_visda.py, whose meta-training seeds are disjoint from these evaluation seeds). Writes
ablation.md, ablation.csv, ablation.json and ablation.png into --output-dir: the paired table
(each row's difference to the best baseline row on the same seeds, with a 95% interval), KL on
against off, the guidance comparison and how each proxy split tracks real accuracy. With
--address (or under `ray job submit --working-dir .`) the rows run on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from experiments.lib.ablation_rows import ROWS
from experiments.lib.seeds import ABLATION, evaluation_seeds
from experiments.lib.study import StudyFlags, parse_study
from trainables.config import FinetuneConfig
from trainables.entry import run_main
from trainables.errors import ConfigError

Row = Literal[tuple(ROWS)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Args:
    rows: tuple[Row, ...] = tuple(ROWS)  # type: ignore[assignment]
    """Rows to run, space-separated (quote the names with spaces; the older comma-separated form
    is read too); the 'learned' row is added by --policy-checkpoint."""
    seeds: int = 0
    """Evaluation seeds per row (0: the seeds for a 95% half-width of 1 point on the noisiest
    paired difference the committed studies measured; controllers/paired_stats.PILOTS)."""
    policy_checkpoint: str | None = None
    """Add the learned row: a saved policy folder (asg_visda.py's policy/, or a
    learning_curve.py snapshot)."""
    reuse: str | None = None
    """A finished ablation.json (say a smaller --seeds run's) whose runs of these rows and seeds
    under the same fine-tuning config are taken instead of run again: only the missing seeds
    run. PBT rows always run whole."""
    greedy: bool = False
    """Deploy the policy greedily."""
    learned_guidance: tuple[Literal["kl", "csg"], ...] = ("kl",)
    """Guidances the learned policy is deployed with, one row each: kl (row 'learned'), csg
    (row 'learned + CSG')."""


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, Args, StudyFlags, list[str]]:
    """(preset, fine-tuning config, flags, study flags, rows) of a command line; no side
    effects but the line that says how many seeds the committed studies give."""
    flags = StudyFlags(output_dir="runs/ablation")
    preset, cfg, args, flags = parse_study(argv, __doc__, Args(), "ablation", flags)
    rows = list(args.rows)
    from controllers.spec import check_levels

    for r in rows:  # every row's config and multipliers, before Ray starts (one-line errors)
        check_levels(ROWS[r], cfg, f"--rows {r!r}")
    if args.seeds == 0:
        from controllers.paired_stats import planned_seeds

        seeds, why = planned_seeds(target=1.0)
        args = dataclasses.replace(args, seeds=seeds)
        print(f"[ablation] {args.seeds} seeds per row: {why}", flush=True)
    if args.seeds < 2:
        raise ConfigError("--seeds must be >= 2 (paired intervals need two pairs)")
    return preset, cfg, args, flags, rows


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args, flags, rows = parse(argv)

    from controllers.tune_runs import run_controllers
    from experiments.lib.ablation_results import write_ablation_results
    from experiments.lib.ablation_rows import in_row_order, learned_rows
    from experiments.lib.recorded_runs import reusable_runs
    from experiments.lib.study import start_study

    study = start_study(
        "experiments/ablation.py", argv, cfg, flags.ray(), flags.output_dir,
        deploys=args.policy_checkpoint,
    )  # fmt: skip
    seeds = evaluation_seeds(ABLATION, args.seeds)
    specs = [ROWS[r] for r in rows]
    reused = []
    if args.reuse:
        growable = [s.method for s in specs if not s.pbt]
        reused = reusable_runs(args.reuse, cfg, growable, seeds)
        print(f"[ablation] {len(reused)} runs taken from {args.reuse}", flush=True)
    runs = reused + run_controllers(
        specs, seeds, cfg, study.tune, "rows", flags.resources(), flags.resume, done=reused
    )
    if args.policy_checkpoint:  # its own experiment, so that it can join a finished table
        guidances = list(args.learned_guidance)
        specs = learned_rows(args.policy_checkpoint, study.policy_encoding, guidances, args.greedy)
        rows += [s.method for s in specs]
        runs += run_controllers(
            specs, seeds, cfg, study.tune, "learned", flags.resources(), flags.resume
        )
    runs = in_row_order(runs, rows)
    table = write_ablation_results(
        study.out, study.command, preset, cfg, args.seeds, rows, runs, study.t0
    )
    print("\n" + table)
    wall = study.elapsed()
    print(f"[asg] ablation done in {wall / 60:.1f} min; results in {study.out}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
