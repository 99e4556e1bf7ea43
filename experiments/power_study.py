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

import argparse
import time
from pathlib import Path

from controllers import atomic_files
from controllers.static_study import StaticRun, Variant, check_schedules, run_study
from experiments.power.analysis import analyse
from experiments.power.markdown import markdown
from experiments.power.plot import plot
from experiments.power.schedule_sets import SCHEDULE_SETS, resolve_schedules
from experiments.power.variants import parse_variants
from trainables.cli import (
    OneLineErrorParser,
    add_config_args,
    add_preset_flag,
    command_line,
    config_from_args,
    preset_from_argv,
    run_main,
)
from trainables.config import PRESETS
from trainables.errors import ConfigError


def build_parser(preset: str) -> OneLineErrorParser:
    p = OneLineErrorParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_preset_flag(p, "embedded")
    s = p.add_argument_group("study")
    s.add_argument(
        "--schedules",
        default="pair",
        help="';'-separated schedules, or a named set: " + ", ".join(SCHEDULE_SETS),
    )
    s.add_argument("--seeds", type=int, default=20, help="paired seeds per schedule")
    s.add_argument("--seed-base", type=int, default=50_000, help="first seed")
    s.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "FIELD=VALUE"),
        help="a benchmark configuration to compare: a name, then config fields over the "
        "preset and flags (repeat the flag for each variant; default: one, the config)",
    )
    s.add_argument("--workers", type=int, default=2, help="worker processes")
    s.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per worker")
    s.add_argument("--target", type=float, default=1.0, help="half-width (points) to plan for")
    s.add_argument("--output-dir", default="runs/power_study", help="where results go")
    add_config_args(p, PRESETS[preset])
    return p


def parse(argv: list[str] | None) -> tuple[list[Variant], list[str], argparse.Namespace]:
    """(variants, schedules, flags) of a command line; no side effects."""
    preset = preset_from_argv(argv, default="embedded")
    args = build_parser(preset).parse_args(argv)
    if args.seeds < 2 or args.workers < 1 or args.threads_per_worker < 1:
        raise ConfigError("--seeds must be >= 2, --workers and --threads-per-worker >= 1")
    variants = parse_variants(config_from_args(args), args.variant)
    schedules = resolve_schedules(args.schedules, variants)
    check_schedules(variants, schedules)
    return variants, schedules, args


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
