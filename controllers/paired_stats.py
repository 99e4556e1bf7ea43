"""Paired statistics for comparing schedules run on the same seeds: how noisy, how detectable.

Every schedule in a study runs on the same seeds (same data order, same head start), so the
difference between two schedules on one seed cancels what the seed changes. What is left is the
paired noise; it, not the spread of either schedule alone, sets which differences a study can see.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats


def t_quantile(q: float, n: int) -> float:
    """Student's t quantile for n paired samples (n - 1 degrees of freedom)."""
    return float(stats.t.ppf(q, max(n - 1, 1)))


def detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true paired difference a two-sided paired t-test on n seeds finds with
    probability `power` (normal approximation with t quantiles: (t_{1-a/2} + t_power) sd/sqrt n)."""
    return (t_quantile(1 - alpha / 2, n) + t_quantile(power, n)) * sd / math.sqrt(n)


def half_width(sd: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided `level` t-interval of a mean over n seeds with this sd."""
    return t_quantile(0.5 + level / 2, n) * sd / math.sqrt(n)


def seeds_for_half_width(sd: float, target: float, level: float = 0.95, most: int = 10_000) -> int:
    """Fewest seeds whose `level` interval on a paired difference is at most +-target."""
    for n in range(2, most + 1):
        if half_width(sd, n, level) <= target:
            return n
    return most


def seeds_for_difference(sd: float, gap: float, power: float = 0.8, most: int = 10_000) -> int:
    """Fewest seeds that detect a true paired gap with the given power (alpha 0.05)."""
    for n in range(2, most + 1):
        if detectable(sd, n, power=power) <= gap:
            return n
    return most


@dataclass(frozen=True)
class PairedDifference:
    a: str
    b: str
    n: int
    mean: float
    """Mean of a - b over the shared seeds."""
    sd: float
    """Sample sd of the per-seed differences: the paired noise."""
    half_width_95: float
    detectable_80: float
    """Smallest true difference found with 80% power at this n (alpha 0.05)."""

    @property
    def low(self) -> float:
        return self.mean - self.half_width_95

    @property
    def high(self) -> float:
        return self.mean + self.half_width_95


def paired(a: str, b: str, by_seed: Mapping[str, Mapping[int, float]]) -> PairedDifference:
    """a - b over the seeds both ran."""
    seeds = sorted(set(by_seed[a]) & set(by_seed[b]))
    d = np.array([by_seed[a][s] - by_seed[b][s] for s in seeds], dtype=np.float64)
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    return PairedDifference(
        a, b, n, float(d.mean()) if n else math.nan, sd, half_width(sd, n), detectable(sd, n)
    )


def noisiest(names: Sequence[str], by_seed: Mapping[str, Mapping[int, float]]) -> PairedDifference:
    """The pair of `names` whose per-seed differences vary most (at least two names)."""
    pairs = (paired(a, b, by_seed) for i, a in enumerate(names) for b in names[i + 1 :])
    return max(pairs, key=lambda d: d.sd)


@dataclass(frozen=True)
class TwoWay:
    """Two-way analysis of variance (schedules x seeds, one run per cell)."""

    n_seeds: int
    n_schedules: int
    seed_sd: float
    """sd of the seed effect (what pairing removes)."""
    schedule_sd: float
    """sd of the schedule effect (0 when the schedules are indistinguishable)."""
    residual_sd: float
    schedule_p: float
    """p-value of the F-test 'all schedules score the same'."""

    @property
    def paired_sd(self) -> float:
        """Expected sd of a paired difference between two schedules: sqrt(2) x residual sd."""
        return math.sqrt(2.0) * self.residual_sd

    def to_dict(self) -> dict[str, float]:
        """The fields and the paired sd (as power.json records them)."""
        return dataclasses.asdict(self) | {"paired_sd": self.paired_sd}


def two_way(table: np.ndarray) -> TwoWay:
    """`table[schedule, seed]`, complete (every schedule on every seed)."""
    k, n = table.shape
    grand = table.mean()
    rows, cols = table.mean(axis=1), table.mean(axis=0)
    resid = table - rows[:, None] - cols[None, :] + grand
    df_r = (k - 1) * (n - 1)
    ms_r = float((resid**2).sum() / df_r) if df_r else math.nan
    ms_sched = float(n * ((rows - grand) ** 2).sum() / max(k - 1, 1))
    ms_seed = float(k * ((cols - grand) ** 2).sum() / max(n - 1, 1))
    f = ms_sched / ms_r if ms_r > 0 else math.inf
    p = float(stats.f.sf(f, k - 1, df_r)) if df_r else math.nan
    return TwoWay(
        n_seeds=n,
        n_schedules=k,
        seed_sd=math.sqrt(max(ms_seed - ms_r, 0.0) / k),
        schedule_sd=math.sqrt(max(ms_sched - ms_r, 0.0) / n),
        residual_sd=math.sqrt(ms_r),
        schedule_p=p,
    )


def complete_table(
    by_seed: Mapping[str, Mapping[int, float]], names: Sequence[str]
) -> tuple[np.ndarray, list[int]]:
    """`table[schedule, seed]` over the seeds every named schedule ran."""
    seeds = sorted(set.intersection(*(set(by_seed[n]) for n in names)))
    return np.array([[by_seed[n][s] for s in seeds] for n in names], dtype=np.float64), seeds


_RESULTS = Path(__file__).resolve().parents[1] / "results"
STUDY = _RESULTS / "benchmark_landscape_b48" / "power.json"
"""The committed power study of the embedded benchmark at its default batch 48
(`results/benchmark_landscape_b48/command.sh`): its static schedules, all with KL guidance."""
PILOTS = (STUDY, _RESULTS / "ablation_b48_22" / "ablation.json")
"""Where many-seed experiments take their seed count from: the power study, and the ablation
run at the power study's count, whose rows without KL guidance measured noisier pairs."""


def noisiest_pair(path: Path) -> tuple[float, str]:
    """(paired sd, which pair) of the noisiest in-range pair a committed study measured: a power
    study's (its pooled in-range paired sd where it recorded no pairs), or an ablation's among
    its baseline and learned rows (the reference rows left out)."""
    payload = json.loads(path.read_text())
    if "variants" in payload:
        entry = next(iter(payload["variants"].values()))
        if "noisiest_pair" not in entry:
            return entry.get("two_way_in_range", entry["two_way"])["paired_sd"], "pooled"
        pair = entry["noisiest_pair"]
        return pair["sd"], f"{pair['a']} - {pair['b']}"
    from envs.summary import RunSummary

    by_seed: dict[str, dict[int, float]] = {}
    for r in map(RunSummary.from_dict, payload["runs"]):
        if r.kind != "reference":
            by_seed.setdefault(r.method, {})[r.seed] = 100 * r.test_acc
    worst = noisiest(list(by_seed), by_seed)
    return worst.sd, f"{worst.a} - {worst.b}"


def planned_seeds(
    target: float = 1.0, studies: Sequence[Path] = PILOTS, fallback: int = 5
) -> tuple[int, str]:
    """(seeds, why): the fewest seeds whose 95% interval on a paired difference is at most
    +-target points at the noisiest in-range pair any of `studies` measured; `fallback` when
    none can be read."""
    measured = []
    for path in studies:
        try:
            sd, pair = noisiest_pair(path)
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            continue
        measured.append((sd, f"{pair} in {path.parent.name}/{path.name}"))
    if not measured:
        return fallback, f"no study to plan from ({', '.join(str(p) for p in studies)})"
    sd, what = max(measured)
    n = seeds_for_half_width(sd, target)
    return (
        n,
        f"a 95% half-width of {target:g} point at the noisiest pair measured ({what}), sd {sd:.2f}",
    )
