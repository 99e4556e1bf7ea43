"""Static schedules on many paired seeds, many runs per worker process: the power study's engine.

A `Schedule` holds one multiplier per layer group for the whole run. `run_study` runs every
(variant, schedule, seed) cell in a pool of worker processes; each worker builds an env once per
variant and reuses it for every seed (one data render, one frozen pass, one probe fit), so a
run costs its SGD and its evaluations, not a process start. Each finished run is appended to
`runs.jsonl` at once (a `StaticRun` a line): a killed study loses only the runs in flight, and
`run_study` skips the rest when the command runs again.

A cell's schedule may also be `policy@<folder>`: the saved policy in that folder (see
controllers.saved_policy) deployed as the pipeline deploys it (sampling its actions, seeded by
the run), so that a learned policy runs in the same pool, on the same seeds, as the schedules.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import levels_of
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError
from trainables.models import MODEL_GROUPS


def group_aliases(groups: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Names a schedule may use besides the groups: all, backbone (every group but the head),
    early / late (the first and second half of the backbone's groups)."""
    backbone = tuple(g for g in groups if g != "head")
    half = (len(backbone) + 1) // 2
    return {
        "all": tuple(groups),
        "backbone": backbone,
        "early": backbone[:half],
        "late": backbone[half:],
        **{g: (g,) for g in groups},
    }


@dataclass(frozen=True)
class Schedule:
    """One multiplier per group, held for the whole run (the config's anneal tail aside)."""

    name: str
    multipliers: tuple[float, ...]


def parse_schedule(text: str, groups: Sequence[str], levels: Sequence[float]) -> Schedule:
    """'backbone:0.01,head:1' (later parts override earlier ones; unnamed groups start at 0)
    into a Schedule. Every multiplier must be one of the run's levels (--rate-levels)."""
    aliases = group_aliases(groups)
    values = dict.fromkeys(groups, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition(":")
        if not sep or name.strip() not in aliases:
            raise ConfigError(
                f"schedule {text!r}: {part!r} is not <group>:<multiplier>; groups: "
                + ", ".join(aliases)
            )
        try:
            m = float(value)
        except ValueError:
            raise ConfigError(f"schedule {text!r}: {value!r} is not a number") from None
        if not any(abs(m - lv) <= 1e-12 for lv in levels):
            raise ConfigError(
                f"schedule {text!r}: {m:g} is not a level of this run "
                f"({', '.join(f'{lv:g}' for lv in levels)})"
            )
        for g in aliases[name.strip()]:
            values[g] = m
    return Schedule(text.strip(), tuple(values[g] for g in groups))


POLICY_PREFIX = "policy@"
"""A cell's schedule `policy@<folder>` deploys the saved policy in <folder>."""


def policy_folder(schedule: str) -> str | None:
    """The saved-policy folder of a `policy@<folder>` schedule, else None."""
    return schedule[len(POLICY_PREFIX) :] if schedule.startswith(POLICY_PREFIX) else None


@dataclass(frozen=True)
class Variant:
    """A named benchmark configuration (the lever study compares several)."""

    name: str
    config: FinetuneConfig


@dataclass(frozen=True)
class Cell:
    variant: str
    schedule: str
    seed: int


def cells(
    variants: Sequence[Variant], schedules: Sequence[str], seeds: Sequence[int]
) -> list[Cell]:
    """Every run, ordered so that a worker's consecutive runs share a variant."""
    return [Cell(v.name, s, seed) for v in variants for seed in seeds for s in schedules]


def _key(c: Cell) -> tuple[str, str, int]:
    return (c.variant, c.schedule, c.seed)


@dataclass(frozen=True)
class StaticRun:
    """One finished run of a static schedule: a line of `runs.jsonl` (`to_dict()`, the same
    keys as ever), read back by `from_dict()`. Accuracies are fractions (0-1)."""

    variant: str
    schedule: str
    seed: int
    test_acc: float
    """Real-target mean per-class accuracy."""
    proxy_acc: float
    """Final accuracy on the proxy split that fed the reward."""
    initial_proxy_acc: float
    """The proxy accuracy at the head start, before the first window."""
    episode_return: float
    diverged: bool
    run_s: float
    """The run's wall seconds (the worker's env build aside)."""
    sgd_s: float
    """The seconds of its SGD windows."""
    build_s: float
    """Getting the worker's env: the build for a worker's first run of a variant, else ~0."""
    pid: int
    """The worker process that ran it."""
    wise_alpha: float = math.nan
    """The WiSE-FT alpha the run ended at (--wise-alphas); nan, and absent from the line, when
    the option is off, so that a line without it keeps the keys it always had."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.schedule, self.seed)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if math.isnan(self.wise_alpha):
            del d["wise_alpha"]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> StaticRun:
        """A run read back from `to_dict()`; a missing or unknown key, or a value of the wrong
        type, is a ValueError naming it."""
        if not isinstance(d, dict):
            raise ValueError(f"not a StaticRun: a {type(d).__name__}, not a JSON object")
        unknown = sorted(set(d) - set(_RUN_FIELDS))
        missing = [k for k in _RUN_FIELDS if k not in d and k not in _OPTIONAL]
        if unknown or missing:
            why = [
                f"{what} key(s) {keys}"
                for what, keys in [("unknown", unknown), ("missing", missing)]
                if keys
            ]
            raise ValueError(f"not a StaticRun: {', '.join(why)}")
        return cls(**{k: _typed(k, kind, d[k]) for k, kind in _RUN_FIELDS.items() if k in d})


_RUN_FIELDS = {f.name: str(f.type) for f in dataclasses.fields(StaticRun)}
_OPTIONAL = {"wise_alpha"}


def _typed(name: str, kind: str, value: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": number and isinstance(value, int),
        "float": number,
    }[kind]
    if not ok:
        raise ValueError(f"not a StaticRun: {name} = {value!r} is not a {kind}")
    return float(value) if kind == "float" else value


# ---- in the worker process -------------------------------------------------------------------
def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _run_cell(cell: Cell, config: dict[str, Any]) -> StaticRun:
    from controllers.baselines import FixedPolicy
    from controllers.rollout import run_episode
    from envs.reuse import reused_env

    folder = policy_folder(cell.schedule)
    encoding = "multidiscrete"
    if folder is not None:
        from controllers.saved_policy import read_policy_meta

        encoding = read_policy_meta(folder)["action_encoding"]
    t0 = time.perf_counter()
    env = reused_env(FinetuneConfig(**config), encoding)  # built once per worker and variant
    build_s = time.perf_counter() - t0
    groups, levels = env.group_names, tuple(float(x) for x in env.levels)
    if folder is not None:
        from controllers.saved_policy import RLModulePolicy

        policy = RLModulePolicy(folder, groups, encoding)  # samples, as the pipeline deploys
    else:
        schedule = parse_schedule(cell.schedule, groups, levels)
        policy = FixedPolicy(list(schedule.multipliers), env.action_encoding, levels)
    summary = run_episode(env, policy, cell.seed, method=cell.schedule)
    return StaticRun(
        **dataclasses.asdict(cell),
        test_acc=summary.test_acc,
        proxy_acc=summary.proxy_acc,
        initial_proxy_acc=summary.initial_proxy_acc,
        episode_return=summary.episode_return,
        diverged=summary.diverged,
        run_s=summary.wall_s,
        sgd_s=summary.window_s * len(summary.multipliers),
        build_s=build_s,
        pid=os.getpid(),
        wise_alpha=summary.wise_alpha,
    )


# ---- in the driver ---------------------------------------------------------------------------
def read_runs(path: Path) -> list[StaticRun]:
    """The finished runs of `runs.jsonl` (a line cut by a kill is ignored); a line that is JSON
    but not a run is a one-line ConfigError naming the file and the line."""
    if not path.exists():
        return []
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        try:
            runs.append(StaticRun.from_dict(record))
        except ValueError as exc:
            raise ConfigError(
                f"{path} line {number}: {exc} (another study's file? use another --output-dir)"
            ) from None
    return runs


def check_schedules(variants: Sequence[Variant], schedules: Sequence[str]) -> None:
    """Parse every schedule against every variant before any run starts (one-line errors); a
    `policy@<folder>` must hold a saved policy for the variant's groups and rate levels."""
    for v in variants:
        groups = MODEL_GROUPS[v.config.model]
        levels = tuple(float(x) for x in levels_of(v.config.rate_levels))
        for s in schedules:
            folder = policy_folder(s)
            if folder is None:
                parse_schedule(s, groups, levels)
                continue
            from controllers.saved_policy import check_deployable

            check_deployable(folder, groups, v.config.rate_levels)


def run_study(
    variants: Sequence[Variant],
    schedules: Sequence[str],
    seeds: Sequence[int],
    runs_file: Path,
    workers: int = 2,
    threads_per_worker: int = 1,
    on_run: Callable[[StaticRun, int, int], None] | None = None,
) -> list[StaticRun]:
    """Run every cell not already in `runs_file`; returns all of the file's runs for these
    cells. `on_run(run, done, total)` after each finished run."""
    return run_cells(
        variants, cells(variants, schedules, seeds), runs_file, workers, threads_per_worker, on_run
    )


def run_cells(
    variants: Sequence[Variant],
    todo_all: Sequence[Cell],
    runs_file: Path,
    workers: int = 2,
    threads_per_worker: int = 1,
    on_run: Callable[[StaticRun, int, int], None] | None = None,
) -> list[StaticRun]:
    """`run_study` for any list of cells (each naming one of `variants`), in one pool: for a
    study whose variants run different schedules. Their schedules are checked first."""
    for v in variants:
        check_schedules([v], sorted({c.schedule for c in todo_all if c.variant == v.name}))
    configs = {v.name: dataclasses.asdict(v.config) for v in variants}
    todo_all = list(dict.fromkeys(todo_all))  # a cell asked for twice runs once
    wanted = {_key(c) for c in todo_all}
    done = {r.key: r for r in read_runs(runs_file)}
    todo = [c for c in todo_all if _key(c) not in done]
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    _end_cut_line(runs_file)
    finished = len(todo_all) - len(todo)
    with (
        runs_file.open("a") as out,
        ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(threads_per_worker,)
        ) as pool,
    ):
        pending = iter(todo)
        running = {pool.submit(_run_cell, c, configs[c.variant]) for c in _take(pending, workers)}
        while running:
            finished_now, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished_now:
                run = future.result()
                out.write(json.dumps(run.to_dict()) + "\n")
                out.flush()
                done[run.key] = run
                finished += 1
                if on_run is not None:
                    on_run(run, finished, len(todo_all))
                for c in _take(pending, 1):
                    running.add(pool.submit(_run_cell, c, configs[c.variant]))
    return [r for k, r in done.items() if k in wanted]


def _end_cut_line(path: Path) -> None:
    """End a last line cut by a kill, so that the next run appended starts a line of its own."""
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:
            with path.open("a") as f:
                f.write("\n")


def _take(it: Iterator[Cell], n: int) -> list[Cell]:
    return [c for _, c in zip(range(n), it, strict=False)]


def _real_acc(run: StaticRun) -> float:
    return run.test_acc


def by_seed(
    runs: Sequence[StaticRun], variant: str, metric: Callable[[StaticRun], float] = _real_acc
) -> dict[str, dict[int, float]]:
    """{schedule: {seed: metric in points}} for one variant (`metric`: a run's fraction, by
    default its real accuracy)."""
    table: dict[str, dict[int, float]] = {}
    for r in runs:
        if r.variant == variant:
            table.setdefault(r.schedule, {})[r.seed] = 100.0 * metric(r)
    return table


def cost_ratio(runs: Sequence[StaticRun]) -> float:
    """Wall time of the runs, their workers' env builds included, over the time of their SGD
    windows (1.0: a run costs only its SGD)."""
    run_s = np.sum([r.run_s + r.build_s for r in runs])
    sgd_s = np.sum([r.sgd_s for r in runs])
    return float(run_s / sgd_s) if sgd_s > 0 else float("nan")
