"""Power study: how noisy is the benchmark, and which schedule differences can N seeds see?

Runs static schedules (one multiplier per layer group, held for the whole run) on the same N
seeds, in worker processes that each build the benchmark once and reuse it for every seed, then
prints per schedule the mean real accuracy, and per pair of schedules the paired sd, the 95%
half-width and the smallest difference detectable at 80% power, with the seeds that a 1-point
half-width needs. `--variant` compares benchmark configurations (the levers that lower noise).

How to run:
    python experiments/power_study.py                                   # the default pair, 20 seeds
    python experiments/power_study.py --schedules landscape --seeds 20  # the landscape grid
    python experiments/power_study.py --schedules "all:0.01;backbone:0.01,head:0.1" --seeds 8
    python experiments/power_study.py --preset embedded --schedules pair --seeds 10 \\
        --variant today head_init=sgd --variant probe head_init=probe

Schedules are ';'-separated; each is '<group>:<multiplier>,...' over the model's groups or the
aliases all, backbone, early, late (unnamed groups get 0; later parts override earlier ones);
multipliers must be levels of --rate-levels. Writes runs.jsonl (one line per finished run:
rerunning the command continues a killed study), power.json, power.md and power.png into
--output-dir. The machinery is experiments/power/ (schedule sets, variants, the analysis, the
Markdown and the plot) over controllers/static_study.py (the runs) and paired_stats.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from controllers import atomic_files
from controllers.static_study import StaticRun, Variant, check_schedules, run_study
from experiments.power.analysis import analyse
from experiments.power.markdown import markdown
from experiments.power.plot import plot
from experiments.power.schedule_sets import resolve_schedules
from experiments.power.variants import parse_variants
from trainables.config import PRESETS, FinetuneConfig, PresetName
from trainables.entry import Flat, command_line, parse_args, preset_from_argv, run_main, script_doc
from trainables.errors import ConfigError


@dataclass(frozen=True)
class PowerFlags:
    """The study: schedules, seeds, variants and workers."""

    schedules: str = "pair"
    """';'-separated schedules, or a named set (pair, landscape, ...: experiments/power/
    schedule_sets.py). Each is '<group>:<multiplier>,...' over the model's groups or the aliases
    all, backbone, early, late (unnamed groups get 0; later parts override earlier ones);
    multipliers must be levels of --rate-levels."""
    seeds: int = 20
    """Paired seeds per schedule."""
    seed_base: int = 50_000
    """First seed."""
    variant: tyro.conf.UseAppendAction[tuple[tuple[str, ...], ...]] = ()
    """A benchmark configuration to compare: a name, then config fields over the preset and
    flags, FIELD=VALUE (repeat the flag for each variant; default: one, the config)."""
    workers: int = 2
    """Worker processes."""
    threads_per_worker: int = 1
    """Torch threads per worker."""
    target: float = 1.0
    """Half-width (points) to plan for."""
    output_dir: str = "runs/power_study"
    """Where results go."""


@dataclass(frozen=True)
class Args:
    study: Flat[PowerFlags]
    run: Flat[FinetuneConfig]
    preset: PresetName = "embedded"
    """Named configuration whose values are the defaults every other flag overrides."""


def parse(argv: list[str] | None) -> tuple[list[Variant], list[str], PowerFlags]:
    """(variants, schedules, study flags) of a command line; no side effects."""
    preset = preset_from_argv(argv, default="embedded")
    args = parse_args(Args, argv, Args(PowerFlags(), PRESETS[preset], preset), script_doc(__doc__))  # type: ignore[arg-type]
    flags = args.study
    if flags.seeds < 2 or flags.workers < 1 or flags.threads_per_worker < 1:
        raise ConfigError("--seeds must be >= 2, --workers and --threads-per-worker >= 1")
    variants = parse_variants(args.run, [list(v) for v in flags.variant])
    schedules = resolve_schedules(flags.schedules, variants)
    check_schedules(variants, schedules)
    return variants, schedules, flags


def progress(r: StaticRun, done: int, total: int) -> None:
    print(
        f"[power] {done}/{total} {r.variant} `{r.schedule}` seed {r.seed}: real "
        f"{100 * r.test_acc:.1f}% proxy {100 * r.proxy_acc:.1f}% ({r.run_s:.0f} s)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    variants, schedules, args = parse(argv)
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    out = Path(args.output_dir)
    total = len(variants) * len(schedules) * len(seeds)
    print(
        f"[power] {len(variants)} variant(s) x {len(schedules)} schedules x {len(seeds)} seeds "
        f"= {total} runs, {args.workers} workers -> {out}",
        flush=True,
    )
    t0 = time.perf_counter()
    runs = run_study(
        variants,
        schedules,
        seeds,
        out / "runs.jsonl",
        args.workers,
        args.threads_per_worker,
        progress,
    )
    result = analyse(runs, variants, schedules, args.target)
    result["command"] = command_line("experiments/power_study.py", argv)
    result["wall_s"] = time.perf_counter() - t0
    atomic_files.write_json(out / "power.json", result, indent=1)
    text = markdown(result)
    atomic_files.write_text(out / "power.md", text)
    plot(result, out / "power.png")
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
