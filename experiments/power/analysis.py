"""The runs of a power study into its result (power.json less the command and the wall time):
per variant, each schedule's mean real accuracy, the two-way ANOVA over schedules x seeds (all
schedules, and those in range), every schedule against the best, the noisiest pair (in range)
and the seeds it needs for the target half-width, and what a run costs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from controllers import paired_stats as ps
from controllers.static_study import StaticRun, Variant, by_seed, cost_ratio


def analyse(
    runs: Sequence[StaticRun], variants: Sequence[Variant], schedules: Sequence[str], target: float
) -> dict[str, Any]:
    """Every variant's schedule means, two-way ANOVA and pairs, as one JSON-able dict; `target`
    is the half-width (points) the seed count is planned for."""
    return {
        "variants": {
            v.name: _variant([r for r in runs if r.variant == v.name], v, schedules, target)
            for v in variants
        },
        "target_half_width": target,
    }


def _variant(
    runs: list[StaticRun], v: Variant, schedules: Sequence[str], target: float
) -> dict[str, Any]:
    table = by_seed(runs, v.name)
    proxy = by_seed(runs, v.name, lambda r: r.proxy_acc)
    names = [s for s in schedules if s in table]
    rows = {s: _schedule_row(s, table[s], proxy[s], runs) for s in names}
    entry: dict[str, Any] = {"config": dataclasses.asdict(v.config), "schedules": rows}
    if len(names) >= 2:
        initial = by_seed(runs, v.name, lambda r: r.initial_proxy_acc)
        entry |= _comparisons(table, proxy, initial, rows, target)
    entry["cost_ratio"] = cost_ratio(runs)
    entry["mean_run_s"] = sum(r.run_s for r in runs) / max(len(runs), 1)
    return entry


def _schedule_row(
    schedule: str, real: dict[int, float], proxy: dict[int, float], runs: list[StaticRun]
) -> dict[str, Any]:
    return {
        "n": len(real),
        "mean": float(sum(real.values()) / len(real)),
        "sd": _sd(list(real.values())),
        "proxy_mean": float(sum(proxy.values()) / len(proxy)) / 100.0,
        "diverged": sum(r.diverged for r in runs if r.schedule == schedule),
    }


def _comparisons(
    table: dict[str, dict[int, float]],
    proxy: dict[str, dict[int, float]],
    initial: dict[str, dict[int, float]],
    rows: dict[str, dict[str, Any]],
    target: float,
) -> dict[str, Any]:
    """The ANOVAs, the pairs against the best, and the seeds the target half-width needs."""
    names = list(rows)
    out: dict[str, Any] = {"two_way": ps.two_way(ps.complete_table(table, names)[0]).to_dict()}
    # In range: schedules that leave the proxy no worse than the head start (the proxy, not
    # real labels, says which schedules wrecked the model).
    in_range = [
        s
        for s in names
        if rows[s]["proxy_mean"] >= sum(initial[s].values()) / len(initial[s]) / 100.0
    ]
    out["in_range"] = in_range
    if len(in_range) >= 2:
        out["two_way_in_range"] = ps.two_way(ps.complete_table(table, in_range)[0]).to_dict()
    out["proxy_paired_sd"] = ps.two_way(ps.complete_table(proxy, names)[0]).paired_sd
    best = max(names, key=lambda s: rows[s]["mean"])
    out["best"] = best
    out["pairs_vs_best"] = [
        dataclasses.asdict(ps.paired(best, s, table)) for s in names if s != best
    ]
    uniform = [s for s in names if is_uniform(s)]
    layered = [s for s in names if s not in uniform]
    if uniform and layered:  # does a per-layer choice beat the best single rate?
        bu = max(uniform, key=lambda s: rows[s]["mean"])
        bl = max(layered, key=lambda s: rows[s]["mean"])
        out["per_layer_vs_uniform"] = dataclasses.asdict(ps.paired(bl, bu, table))
    # Plan for the noisiest pair, not the pooled sd: a study reports every pair it compares, and
    # pairs differ in noise (1.1 to 2.2 points among the batch-48 landscape's).
    noisiest = ps.noisiest(in_range if len(in_range) >= 2 else names, table)
    out["noisiest_pair"] = dataclasses.asdict(noisiest)
    out["seeds_for_target"] = ps.seeds_for_half_width(noisiest.sd, target)
    return out


def is_uniform(schedule: str) -> bool:
    """One rate for every group ('all:0.1')."""
    return schedule.startswith("all:") and "," not in schedule


def _sd(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    m = sum(values) / n
    return math.sqrt(sum((x - m) ** 2 for x in values) / (n - 1))
