"""The equal-compute search of `experiments/equal_compute.py`: how a budget of fine-tuning runs
is split between the non-learned families, each family's candidates, its winner (by the proxy
alone: a run's real accuracy is never read before the winners are fixed), and the table of the
deployed winners.

The families, all static schedules of `controllers.static_study` (one multiplier per layer
group for the whole run), drawn from the run's rate levels within [--low, --high]:

- `uniform`: one multiplier for every group (the 1-D sweep), levels spread over the range;
- `random`: an independent level per group (random search; seeded, so reproducible);
- `surgical` (Lee et al. 2023): one backbone group and the head at the uniform winner's
  multiplier, every other group at 0;
- `WiSE-FT` (Wortsman et al. 2022): the uniform winner, ending each run at the WiSE-FT alpha
  that scores best on the proxy inside that run (`FinetuneConfig.wise_alphas`): no search runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controllers import paired_stats as ps
from controllers.static_study import POLICY_PREFIX, Cell, StaticRun
from envs.actions import levels_of
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError
from trainables.models import MODEL_GROUPS

UNIFORM, RANDOM, SURGICAL, WISE = "uniform sweep", "random search", "surgical", "WiSE-FT"
SEARCH, EVAL, EVAL_WISE = "search", "eval", "eval+wise"
"""The variants (benchmark configurations) of runs.jsonl: the search's runs, the deployed rows'
and the WiSE-FT row's (the same config with --wise-alphas)."""


@dataclass(frozen=True)
class Space:
    groups: tuple[str, ...]
    levels: tuple[float, ...]
    """The run's rate levels within [--low, --high]."""

    @property
    def backbone(self) -> tuple[str, ...]:
        return tuple(g for g in self.groups if g != "head")


def search_space(cfg: FinetuneConfig, low: float, high: float) -> Space:
    """The model's groups and the run's levels in [low, high]; a one-line ConfigError if none."""
    every = [float(x) for x in levels_of(cfg.rate_levels)]
    levels = tuple(x for x in every if low - 1e-12 <= x <= high + 1e-12)
    if not levels or low <= 0:
        raise ConfigError(
            f"--low {low:g} --high {high:g}: needs 0 < low <= high and a level of "
            f"--rate-levels {cfg.rate_levels} between them ({', '.join(f'{x:g}' for x in every)})"
        )
    return Space(tuple(MODEL_GROUPS[cfg.model]), levels)


@dataclass(frozen=True)
class Plan:
    """Candidates per family; each runs on every search seed."""

    uniform: int
    random: int
    surgical: int
    search_seeds: int

    def runs(self) -> dict[str, int]:
        n = self.search_seeds
        return {
            "uniform": self.uniform * n,
            "random": self.random * n,
            "surgical": self.surgical * n,
        }


def plan_budget(budget: int, search_seeds: int, space: Space) -> Plan:
    """Split `budget` runs: a third of the candidates (at most the levels in range) to the
    uniform sweep, half the rest (at most one per backbone group) to surgical, the rest to
    random search. One-line ConfigErrors when the budget does not divide or is too small."""
    if search_seeds < 1 or budget < 1:
        raise ConfigError("--budget and --search-seeds must be >= 1")
    if budget % search_seeds:
        raise ConfigError(
            f"--budget {budget} is not a multiple of --search-seeds {search_seeds} (every "
            f"candidate runs on every search seed)"
        )
    n = budget // search_seeds
    if n < 3:
        raise ConfigError(
            f"--budget {budget} / --search-seeds {search_seeds} = {n} candidate(s); the search "
            f"needs at least 3 (one per family)"
        )
    uniform = min(len(space.levels), math.ceil(n / 3))
    surgical = min(len(space.backbone), math.ceil((n - uniform) / 2))
    return Plan(uniform, n - uniform - surgical, surgical, search_seeds)


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """`n` of `items`, evenly spread (the middle one for n = 1)."""
    return [items[int((i + 0.5) * len(items) / n)] for i in range(n)]


def uniform_candidates(space: Space, n: int) -> list[str]:
    return [f"all:{m:g}" for m in _spread(space.levels, n)]


def surgical_candidates(space: Space, n: int, m: float) -> list[str]:
    return [f"{g}:{m:g},head:{m:g}" for g in _spread(space.backbone, n)]


def random_candidates(space: Space, n: int, seed: int) -> list[str]:
    """`n` distinct schedules, a level drawn per group from the range (seeded)."""
    rng, out = np.random.default_rng(seed), []
    for _ in range(1000 * n):
        if len(out) == n:
            break
        picks = rng.choice(len(space.levels), size=len(space.groups))
        s = ",".join(f"{g}:{space.levels[i]:g}" for g, i in zip(space.groups, picks, strict=True))
        if s not in out:
            out.append(s)
    return out


def proxy_score(run: StaticRun) -> float:
    """What the search ranks a run by: its final proxy accuracy; a diverged run scores 0 (its
    `proxy_acc` is the last finite one, from before it diverged)."""
    return 0.0 if run.diverged else run.proxy_acc


def winner(candidates: Sequence[str], runs: Sequence[StaticRun]) -> tuple[str, dict[str, float]]:
    """(the candidate with the best mean proxy over the search runs (ties: the first), each
    candidate's mean proxy)."""
    means = {
        c: statistics.fmean(proxy_score(r) for r in runs if r.variant == SEARCH and r.schedule == c)
        for c in candidates
    }
    return max(candidates, key=means.__getitem__), means


def multiplier_of(uniform: str) -> float:
    """m of 'all:m'."""
    return float(uniform.split(":", 1)[1])


def cells(variant: str, schedules: Sequence[str], seeds: Sequence[int]) -> list[Cell]:
    return [Cell(variant, s, seed) for seed in seeds for s in schedules]


def families(
    uniform: Sequence[str],
    randoms: Sequence[str],
    surgical: Sequence[str],
    runs: Sequence[StaticRun],
    wise_alphas: Sequence[float],
) -> dict[str, dict[str, Any]]:
    """Family name -> its winner, every candidate's mean proxy, and the search runs it spent.
    WiSE-FT spends none: it is the uniform winner, its alpha picked in each deployed run."""
    out: dict[str, dict[str, Any]] = {}
    for name, candidates in [(UNIFORM, uniform), (RANDOM, randoms), (SURGICAL, surgical)]:
        best, proxy = winner(candidates, runs)
        spent = sum(r.variant == SEARCH and r.schedule in candidates for r in runs)
        out[name] = {"winner": best, "candidates": proxy, "runs": spent}
    alphas = "/".join(f"{a:g}" for a in wise_alphas)
    out[WISE] = {
        "winner": out[UNIFORM]["winner"],
        "candidates": {},
        "runs": 0,
        "how": f"the uniform winner; alpha {alphas} picked on the proxy inside each run",
    }
    return out


@dataclass(frozen=True)
class Row:
    """A deployed row: its name, kind (baseline / learned), and the runs it reads."""

    name: str
    kind: str
    variant: str
    schedule: str


def rows(families: dict[str, dict[str, Any]], policy_dir: str | None) -> list[Row]:
    """The deployed rows: each family's winner (WiSE-FT's with --wise-alphas), and the saved
    policy in `policy_dir` if given, deployed as the pipeline deploys it."""
    out = [
        Row(name, "baseline", EVAL_WISE if name == WISE else EVAL, f["winner"])
        for name, f in families.items()
    ]
    if policy_dir:
        folder = str(Path(policy_dir).expanduser().resolve())
        out.append(Row("learned", "learned", EVAL, POLICY_PREFIX + folder))
    return out


def table(rows: Sequence[Row], runs: Sequence[StaticRun]) -> tuple[list[dict[str, Any]], str]:
    """Per row: real and proxy accuracy over the evaluation seeds, the chosen WiSE-FT alphas,
    and the paired difference to the reference: the best baseline row by mean real accuracy on
    these seeds (as every table of the project picks it). Returns (rows, reference)."""
    real = {r.name: _by_seed(r, runs, lambda x: x.test_acc) for r in rows}
    ref = max((r.name for r in rows if r.kind == "baseline"), key=lambda n: _mean(real[n]))
    out = []
    for r in rows:
        mine = [x for x in runs if (x.variant, x.schedule) == (r.variant, r.schedule)]
        d = ps.paired(r.name, ref, real) if r.name != ref else None
        alphas = sorted(x.wise_alpha for x in mine if not math.isnan(x.wise_alpha))
        out.append(
            {
                "row": r.name,
                "kind": r.kind,
                "variant": r.variant,
                "schedule": r.schedule,
                "runs": len(mine),
                "test_acc_mean": _mean(real[r.name]),
                "test_acc_sd": _sd(list(real[r.name].values())),
                "proxy_acc_mean": statistics.fmean(x.proxy_acc for x in mine),
                "diverged": sum(x.diverged for x in mine),
                "wise_alphas": {f"{a:g}": alphas.count(a) for a in sorted(set(alphas))},
                "vs_reference": None if d is None else d.mean,
                "vs_reference_ci95": None if d is None else d.half_width_95,
                "pairs": 0 if d is None else d.n,
            }
        )
    return out, ref


def _by_seed(row: Row, runs: Sequence[StaticRun], value) -> dict[int, float]:
    return {
        x.seed: value(x) for x in runs if (x.variant, x.schedule) == (row.variant, row.schedule)
    }


def _mean(by_seed: dict[int, float]) -> float:
    return statistics.fmean(by_seed.values()) if by_seed else math.nan


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def markdown(result: dict[str, Any]) -> str:
    """equal_compute.md's body: how the budget was spent, the winners, the deployed table."""
    seeds, evals = result["search_seeds"], result["eval_seeds"]
    lines = [
        f"Protocol: {result['protocol']}.\n",
        f"## The search: {result['budget']} runs on seeds {seeds[0]}-{seeds[-1]} (meta-training's "
        f"range), ranked by the '{result['proxy']}' proxy only\n",
        "| family | candidates | runs | winner (best mean proxy) | its proxy (%) |",
        "|---|---|---|---|---|",
    ]
    for name, f in result["families"].items():
        best = f["winner"]
        proxy = f"{100 * f['candidates'][best]:.1f}" if best in f["candidates"] else "—"
        how = f" ({f['how']})" if "how" in f else ""
        lines.append(f"| {name} | {len(f['candidates'])} | {f['runs']} | `{best}`{how} | {proxy} |")
    spent = sum(f["runs"] for f in result["families"].values())
    lines.append(f"| total | | {spent} (budget {result['budget']}) | | |\n")
    lines.append(
        "Every candidate's mean proxy is in equal_compute.json (`families`); a diverged run "
        "scores 0. No real label was read before the winners were fixed.\n"
    )
    ref = result["reference"]
    lines += [
        f"## Deployed on {len(evals)} evaluation seeds ({evals[0]}-{evals[-1]}), paired\n",
        "Real-target mean per-class accuracy, mean ± sd over the seeds. The paired column is "
        f"each row's per-seed difference to the best static row on these seeds ({ref}), with "
        "its 95% t-interval (picking the reference on these seeds favours the baselines).\n",
        f"| row | kind | schedule | real test acc (%) | proxy acc (%) | vs {ref}, paired (pts, "
        "95% CI) | WiSE-FT alpha chosen (runs) | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        alphas = ", ".join(f"{a}: {n}" for a, n in r["wise_alphas"].items()) or "—"
        lines.append(
            f"| {r['row']} | {r['kind']} | `{r['schedule']}` | {100 * r['test_acc_mean']:.1f} ± "
            f"{100 * r['test_acc_sd']:.1f} | {100 * r['proxy_acc_mean']:.1f} | "
            f"{'(reference)' if r['row'] == ref else _verdict(r)} | {alphas} | {r['diverged']} |"
        )
    for r in result["rows"]:
        if r["kind"] == "learned":
            beats = r["vs_reference_ci95"] is not None and _low(r) > 0
            lines.append(
                f"\n**{r['row']} {'BEATS' if beats else 'does NOT beat'} the best static "
                f"winner, {ref}**: {_verdict(r)} over {r['pairs']} seeds."
            )
    return "\n".join(lines) + "\n"


def _low(r: dict[str, Any]) -> float:
    return r["vs_reference"] - r["vs_reference_ci95"]  # nan without an interval


def _verdict(r: dict[str, Any]) -> str:
    from experiments.report import verdict

    return verdict(r["vs_reference"], r["vs_reference_ci95"])
