"""The transfer table: a meta-trained policy against the untrained one and a static schedule,
on the task it was trained on and on tasks it never saw.

Reads the runs of a power study whose variants are the tasks and whose schedules are the
trained policy, the untrained policy and the static reference (results/transfer/command.sh),
and prints, per task, each row's real accuracy and the trained policy's paired differences to
the other two with 95% intervals. With --curve, the learning curve's runs of the same two
policies on the task they were trained on (other seeds) are pooled with the study's first
task for one more line.

    python tools/transfer_table.py results/transfer/runs.jsonl \
        --curve results/learning_curve_deploy/learning_curve.json > results/transfer/transfer.md
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from controllers.static_study import by_seed, read_runs
from envs.summary import RunSummary
from experiments.report import by_seed as by_method_seed
from experiments.report import paired_difference, real_acc
from trainables.entry import parse_args, run_main, script_doc
from trainables.errors import ConfigError

WRECKED = 25.0
"""A run at or below this real accuracy (points; 10 classes, chance 10) fell off the cliff:
in-range schedules end at 60-75."""


@dataclass(frozen=True)
class Args:
    runs: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="RUNS_JSONL")]]
    """The transfer study's runs.jsonl."""
    trained: str = "policy@results/learning_curve_deploy/policy_ep0128"
    """The trained policy's schedule name in the study."""
    untrained: str = "policy@results/learning_curve_deploy/policy_ep0000"
    """The untrained policy's schedule name."""
    static: str = "all:0.1"
    """The static reference schedule."""
    curve: str | None = None
    """A learning_curve.json whose 'learned @0' and 'learned @<N>' runs (N: the trained
    policy's milestone) are pooled with the study's first task."""


def _cell(xs: dict[int, float]) -> str:
    values = list(xs.values())
    wrecked = sum(v <= WRECKED for v in values)
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} ({wrecked} wrecked)"


def _diff(a: dict[int, float], b: dict[int, float]) -> str:
    mean, half, n = paired_difference(a, b)
    sign = "above" if mean - half > 0 else "below" if mean + half < 0 else "unresolved"
    return f"{mean:+.1f} [{mean - half:+.1f}, {mean + half:+.1f}] ({sign}, n={n})"


def _curve_points(path: str, trained: str) -> dict[str, dict[int, float]]:
    """{'trained' | 'untrained': {seed: real accuracy in points}} of a learning_curve.json's
    snapshot at the trained policy's milestone (its folder's `_ep<N>`) and at 0."""
    try:
        milestone = int(trained.rsplit("_ep", 1)[1])
    except (IndexError, ValueError):
        raise ConfigError(f"--trained {trained}: not a snapshot folder (..._ep<N>)") from None
    try:
        runs = [RunSummary.from_dict(r) for r in json.loads(Path(path).read_text())["runs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a learning_curve.json ({exc})") from None
    points = lambda m: {s: 100 * a for s, a in by_method_seed(runs, m, real_acc).items()}  # noqa: E731
    return {"trained": points(f"learned @{milestone}"), "untrained": points("learned @0")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, None, script_doc(__doc__))
    runs = read_runs(Path(args.runs))
    tasks = list(dict.fromkeys(r.variant for r in runs))
    if not tasks:
        raise ConfigError(f"{args.runs}: no runs (not a power study's runs.jsonl?)")
    for task in tasks:
        missing = {args.trained, args.untrained, args.static} - set(by_seed(runs, task))
        if missing:
            raise ConfigError(f"{args.runs}: task {task!r} has no runs of {sorted(missing)}")
    curve = _curve_points(args.curve, args.trained) if args.curve else {}
    print(f"Real accuracy (%, mean ± sd over seeds; wrecked: runs at or below {WRECKED:g}%) and")
    print("the trained policy's paired differences (points, 95% interval).\n")
    print("| task | trained | untrained | static | trained − untrained | trained − static |")
    print("|---|---|---|---|---|---|")
    first = {}
    for task in tasks:
        table = by_seed(runs, task)
        t, u, s = table[args.trained], table[args.untrained], table[args.static]
        first = first or {"trained": t, "untrained": u}
        print(f"| {task} | {_cell(t)} | {_cell(u)} | {_cell(s)} | {_diff(t, u)} | {_diff(t, s)} |")
    if curve:
        t = {**curve["trained"], **first["trained"]}
        u = {**curve["untrained"], **first["untrained"]}
        print(f"\n{tasks[0]}, pooled with the learning curve's seeds: trained {_cell(t)}, "
              f"untrained {_cell(u)}; trained − untrained {_diff(t, u)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
