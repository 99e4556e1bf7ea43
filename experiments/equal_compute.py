"""Non-learned baselines with the compute meta-training used: does the learned policy beat them?

Spends --budget fine-tuning runs (the number meta-training used: asg_visda.py's --meta-episodes)
on meta-training's seeds, split between a uniform sweep, random search over per-group static
schedules and surgical fine-tuning (one backbone group and the head, at the uniform winner's
rate), all ranked by the proxy alone; WiSE-FT on the uniform winner costs no search run (its
alpha is picked on the proxy inside each run). Then deploys each family's winner, and with
--policy-checkpoint (or --policy-dir) a learned policy, on --seeds evaluation seeds, paired,
and tabulates real accuracy.

How to run:
    python experiments/equal_compute.py --policy-checkpoint runs/asg/policy     # embedded, 24 runs
    python experiments/equal_compute.py --budget 48 --search-seeds 3 --seeds 20
    python experiments/equal_compute.py --preset tiny --budget 6 --seeds 2   # smoke (a minute)

Every run goes through the power study's worker pool (controllers/static_study.py), one line of
runs.jsonl each, so a killed study continues where it stopped when the command runs again.
Writes equal_compute.md and equal_compute.json into --output-dir. The families, the budget's
split and the table are experiments/lib/equal_compute.py.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from controllers.static_study import Cell, StaticRun, Variant, run_cells
from experiments.lib import equal_compute as ec
from experiments.lib.seeds import EQUAL_COMPUTE, META_TRAINING, evaluation_seeds
from experiments.report import write_results
from trainables.config import PRESETS, FinetuneConfig, PresetName, protocol
from trainables.entry import Flat, command_line, parse_args, preset_from_argv, run_main, script_doc
from trainables.errors import ConfigError


@dataclass(frozen=True)
class EqualFlags:
    """The search, the deployment and the workers."""

    budget: int = 24
    """Fine-tuning runs the search may spend: as many as meta-training used (asg_visda.py's
    --meta-episodes, 16 on digits, plus the 128 of the shipped starting policy when the
    pipeline started from it; 24 by default here)."""
    search_seeds: int = 2
    """Meta-training seeds every candidate runs on (its score: the mean proxy over them)."""
    seeds: int = 20
    """Evaluation seeds every winner (and the learned policy) is deployed on, paired."""
    policy_checkpoint: Annotated[str | None, tyro.conf.arg(aliases=("--policy-dir",))] = None
    """A saved policy folder (asg_visda.py's policy/, as ablation.py's --policy-checkpoint) to
    deploy beside the winners, as the pipeline deploys it; also --policy-dir."""
    low: float = 0.01
    """Smallest multiplier the uniform sweep and random search draw (a level of the run)."""
    high: float = 0.5
    """Largest multiplier they draw."""
    random_seed: int = 0
    """Seed of the random search's draws."""
    wise_ft_alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    """The WiSE-FT row's alphas, picked on the proxy inside each run (--wise-alphas of its run)."""
    workers: int = 2
    """Worker processes."""
    threads_per_worker: int = 1
    """Torch threads per worker."""
    output_dir: str = "runs/equal_compute"
    """Where results go."""


@dataclass(frozen=True)
class Args:
    study: Flat[EqualFlags]
    run: Flat[FinetuneConfig]
    preset: PresetName = "embedded"
    """Named configuration whose values are the defaults every other flag overrides."""


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, EqualFlags, ec.Plan, ec.Space]:
    """(preset, config, flags, the budget's split, the search space); no side effects."""
    preset = preset_from_argv(argv, default="embedded")
    default = Args(EqualFlags(), PRESETS[preset], preset)  # type: ignore[arg-type]
    args = parse_args(Args, argv, default, script_doc(__doc__))
    flags, cfg = args.study, args.run
    if flags.seeds < 2 or flags.workers < 1 or flags.threads_per_worker < 1:
        raise ConfigError("--seeds must be >= 2, --workers and --threads-per-worker >= 1")
    if not flags.wise_ft_alphas:
        raise ConfigError("--wise-ft-alphas needs at least one alpha in [0, 1]")
    if cfg.wise_alphas:
        raise ConfigError("--wise-alphas would end every row with WiSE-FT; use --wise-ft-alphas")
    cfg.replace(wise_alphas=flags.wise_ft_alphas)  # checks them: a one-line ConfigError
    space = ec.search_space(cfg, flags.low, flags.high)
    return args.preset, cfg, flags, ec.plan_budget(flags.budget, flags.search_seeds, space), space


def main(argv: list[str] | None = None) -> int:
    preset, cfg, flags, plan, space = parse(argv)
    if flags.policy_checkpoint:  # before any run: a folder that cannot deploy is one line now
        from controllers.saved_policy import check_deployable

        check_deployable(flags.policy_checkpoint, space.groups, cfg.rate_levels)
    t0, out = time.perf_counter(), Path(flags.output_dir)
    wise = cfg.replace(wise_alphas=flags.wise_ft_alphas)
    variants = [Variant(ec.SEARCH, cfg), Variant(ec.EVAL, cfg), Variant(ec.EVAL_WISE, wise)]

    def run(cells: list[Cell]) -> list[StaticRun]:
        return run_cells(variants, cells, out / "runs.jsonl", flags.workers,
                         flags.threads_per_worker, progress)  # fmt: skip

    # 1. The search, on meta-training's seeds, ranked by the proxy alone: the uniform sweep and
    # random search first, then surgical at the uniform winner's multiplier.
    split = " + ".join(f"{family} {n}" for family, n in plan.runs().items())
    print(f"[equal] budget {flags.budget} runs = {split} (candidates x {flags.search_seeds} "
          f"seeds); levels {', '.join(f'{m:g}' for m in space.levels)}", flush=True)  # fmt: skip
    search_seeds = evaluation_seeds(META_TRAINING, flags.search_seeds)
    uniform = ec.uniform_candidates(space, plan.uniform)
    randoms = ec.random_candidates(space, plan.random, flags.random_seed)
    runs = run(ec.cells(ec.SEARCH, uniform + randoms, search_seeds))
    best_uniform = ec.winner(uniform, runs)[0]
    surgical = ec.surgical_candidates(space, plan.surgical, ec.multiplier_of(best_uniform))
    runs += run(ec.cells(ec.SEARCH, surgical, search_seeds))
    families = ec.families(uniform, randoms, surgical, runs, flags.wise_ft_alphas)
    for name, f in families.items():
        how = f.get("how", f"{len(f['candidates'])} candidates, {f['runs']} runs")
        print(f"[equal] {name}: {how} -> `{f['winner']}`", flush=True)

    # 2. Every winner, and the learned policy, on the same evaluation seeds.
    rows = ec.rows(families, flags.policy_checkpoint)
    seeds = evaluation_seeds(EQUAL_COMPUTE, flags.seeds)
    deployed = run([Cell(r.variant, r.schedule, s) for s in seeds for r in rows])
    table, reference = ec.table(rows, deployed)
    result = {
        "protocol": protocol(cfg), "preset": preset, "proxy": cfg.reward_proxy,
        "budget": flags.budget, "search_seeds": search_seeds, "eval_seeds": seeds,
        "families": families, "rows": table, "reference": reference,
        "finetune_config": dataclasses.asdict(cfg), "wall_s": time.perf_counter() - t0,
    }  # fmt: skip
    body = ec.markdown(result)
    title = f"Equal-compute baselines ({preset} preset, budget {flags.budget} runs)"
    command = command_line("experiments/equal_compute.py", argv)
    write_results(out, "equal_compute", title, command, body, result)
    print("\n" + body)
    return 0


def progress(r: StaticRun, done: int, total: int) -> None:
    """One line per finished run; a search run's real accuracy is not even printed."""
    real = "" if r.variant == ec.SEARCH else f"real {100 * r.test_acc:.1f}% "
    print(f"[equal] {r.variant} {done}/{total} `{r.schedule}` seed {r.seed}: {real}proxy "
          f"{100 * r.proxy_acc:.1f}% ({r.run_s:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
