"""Static schedules on many paired seeds, many runs per worker process: the power study's engine.

A `Schedule` holds one multiplier per layer group for the whole run. `run_study` runs every
(variant, schedule, seed) cell in a pool of worker processes; each worker builds an env once per
variant and reuses it for every seed (one data render, one frozen pass, one probe fit), so a
run costs its SGD and its evaluations, not a process start. Each finished run is appended to
`runs.jsonl` at once: a killed study loses only the runs in flight, and `resume` skips the rest.
"""

from __future__ import annotations

import dataclasses
import json
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


# ---- in the worker process -------------------------------------------------------------------
def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _run_cell(cell: Cell, config: dict[str, Any]) -> dict[str, Any]:
    from controllers.baselines import FixedPolicy
    from controllers.rollout import run_episode
    from envs.reuse import reused_env

    t0 = time.perf_counter()
    env = reused_env(FinetuneConfig(**config))  # built once per worker and variant
    build_s = time.perf_counter() - t0
    groups, levels = env.group_names, tuple(float(x) for x in env.levels)
    schedule = parse_schedule(cell.schedule, groups, levels)
    policy = FixedPolicy(list(schedule.multipliers), env.action_encoding, levels)
    summary = run_episode(env, policy, cell.seed, method=cell.schedule)
    return {
        **dataclasses.asdict(cell),
        "test_acc": summary.test_acc,
        "proxy_acc": summary.proxy_acc,
        "initial_proxy_acc": summary.initial_proxy_acc,
        "episode_return": summary.episode_return,
        "diverged": summary.diverged,
        "run_s": summary.wall_s,
        "sgd_s": summary.window_s * len(summary.multipliers),
        "build_s": build_s,
        "pid": os.getpid(),
    }


# ---- in the driver ---------------------------------------------------------------------------
def read_runs(path: Path) -> list[dict[str, Any]]:
    """The finished runs of `runs.jsonl` (a last line cut by a kill is ignored)."""
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return runs


def check_schedules(variants: Sequence[Variant], schedules: Sequence[str]) -> None:
    """Parse every schedule against every variant before any run starts (one-line errors)."""
    for v in variants:
        groups = MODEL_GROUPS[v.config.model]
        levels = tuple(float(x) for x in levels_of(v.config.rate_levels))
        for s in schedules:
            parse_schedule(s, groups, levels)


def run_study(
    variants: Sequence[Variant],
    schedules: Sequence[str],
    seeds: Sequence[int],
    runs_file: Path,
    workers: int = 2,
    threads_per_worker: int = 1,
    on_run: Callable[[dict[str, Any], int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every cell not already in `runs_file`; returns all of the file's runs for these
    cells. `on_run(record, done, total)` after each finished run."""
    check_schedules(variants, schedules)
    configs = {v.name: dataclasses.asdict(v.config) for v in variants}
    todo_all = cells(variants, schedules, seeds)
    wanted = {_key(c) for c in todo_all}
    done = {(r["variant"], r["schedule"], r["seed"]): r for r in read_runs(runs_file)}
    todo = [c for c in todo_all if _key(c) not in done]
    runs_file.parent.mkdir(parents=True, exist_ok=True)
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
                record = future.result()
                out.write(json.dumps(record) + "\n")
                out.flush()
                done[_key(Cell(record["variant"], record["schedule"], record["seed"]))] = record
                finished += 1
                if on_run is not None:
                    on_run(record, finished, len(todo_all))
                for c in _take(pending, 1):
                    running.add(pool.submit(_run_cell, c, configs[c.variant]))
    return [r for k, r in done.items() if k in wanted]


def _take(it: Iterator[Cell], n: int) -> list[Cell]:
    return [c for _, c in zip(range(n), it, strict=False)]


def by_seed(
    runs: Sequence[dict[str, Any]], variant: str, metric: str = "test_acc"
) -> dict[str, dict[int, float]]:
    """{schedule: {seed: metric in points}} for one variant."""
    table: dict[str, dict[int, float]] = {}
    for r in runs:
        if r["variant"] == variant:
            table.setdefault(r["schedule"], {})[int(r["seed"])] = 100.0 * float(r[metric])
    return table


def cost_ratio(runs: Sequence[dict[str, Any]]) -> float:
    """Wall time of the runs, their workers' env builds included, over the time of their SGD
    windows (1.0: a run costs only its SGD)."""
    run_s = np.sum([r["run_s"] + r["build_s"] for r in runs])
    sgd_s = np.sum([r["sgd_s"] for r in runs])
    return float(run_s / sgd_s) if sgd_s > 0 else float("nan")
