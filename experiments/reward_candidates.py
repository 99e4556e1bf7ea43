"""Which reward should the controller maximise? Score candidate rewards before meta-training.

A reward is only useful if ranking fine-tuning runs by it ranks them by real accuracy. This
runs a spread of schedules (uniform multipliers from small to large, head only, hand-tuned and
random per-group schedules) on the same seeds, scores every run on every candidate at its end,
and reports, per candidate, the rank correlation with real-target accuracy *within a seed*
(across schedules: what a controller can change), averaged over seeds, with a bootstrap 95%
interval over schedules.

How to run:
    python experiments/reward_candidates.py                 # embedded preset, 3 seeds
    python experiments/reward_candidates.py --preset tiny --seeds 2 --random-schedules 1

Writes reward_candidates.md / .json into --output-dir. Every run starts from the same head
warm-up for a given seed, so "final" and "final minus initial" rank runs identically within a
seed; the candidates are named by the change the reward sums to.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.cli import command_line, parse_script, run_main
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError

if TYPE_CHECKING:
    from envs.summary import RunSummary

RETENTION_WEIGHT = 0.1
# Candidate name -> (what it reads from a finished run, uses real labels?).
CANDIDATES: dict[str, tuple[Callable[[RunSummary], float], bool]] = {
    "Δ synthetic accuracy": (lambda r: r.proxy_accs["synthetic"], False),
    "Δ synthetic NLL (minus)": (lambda r: -r.proxy_nlls["synthetic"], False),
    "Δ held-out-font accuracy": (lambda r: r.proxy_accs["heldout_fonts"], False),
    "Δ held-out-font NLL (minus)": (lambda r: -r.proxy_nlls["heldout_fonts"], False),
    f"Δ synthetic accuracy - {RETENTION_WEIGHT} x photo KL (retention)": (
        lambda r: r.proxy_accs["synthetic"] - RETENTION_WEIGHT * r.imagenet_kl,
        False,
    ),
    "Δ real few-shot accuracy": (lambda r: r.proxy_accs["real_fewshot"], True),
}
SEED_BASE = 30_000  # disjoint from meta-training and from the other scripts' evaluation seeds


@dataclass(frozen=True)
class Args:
    seeds: int = 3
    """Seeds; every schedule runs on each."""
    uniform: str = "0.05,0.1,0.2,0.5"
    """Uniform multipliers of the 1-D part of the spread."""
    random_schedules: int = 3
    """Random per-group schedules (distinct random streams)."""
    bootstrap: int = 2000
    """Bootstrap resamples of the schedules for the 95% intervals."""
    concurrency: int = 2
    """Fine-tuning runs at once."""
    output_dir: str = "runs/reward_candidates"
    """Results and Tune logs."""
    resume: bool = False
    """Continue an interrupted run."""


def schedules(args: Args) -> list:
    from controllers.spec import ControllerSpec, baseline, uniform

    specs = [uniform(float(m)) for m in args.uniform.split(",") if m]
    specs += [
        ControllerSpec("head only", "baseline", backbone_head=(0.0, 1.0)),
        baseline("hand_tuned"),
    ]
    specs += [
        ControllerSpec(f"random {i}", "baseline", random=True, stream=i)
        for i in range(args.random_schedules)
    ]
    return specs


@dataclass(frozen=True)
class CandidateScore:
    """How well one candidate reward ranks runs by real accuracy (a row of the results)."""

    candidate: str
    uses_real_labels: bool
    rho_within_seed: float
    """Spearman rho across schedules within each seed, averaged over seeds."""
    ci95: tuple[float, float]
    """Bootstrap 95% interval of `rho_within_seed`, resampling schedules."""
    rho_pooled: float
    """Spearman rho over all runs, seeds pooled."""


def within_seed_correlation(
    runs: list[RunSummary],
    value: Callable[[RunSummary], float],
    bootstrap: int,
    rng_seed: int = 0,
) -> tuple[float, float, float, float]:
    """(mean over seeds of the Spearman rho across schedules, bootstrap 2.5% and 97.5%, pooled
    Spearman over all runs)."""
    import numpy as np
    from scipy.stats import spearmanr

    methods = sorted({r.method for r in runs})
    seeds = sorted({r.seed for r in runs})
    table = {(r.method, r.seed): r for r in runs}
    x = np.full((len(methods), len(seeds)), np.nan)
    y = np.full_like(x, np.nan)
    for i, m in enumerate(methods):
        for j, s in enumerate(seeds):
            if (m, s) in table:
                x[i, j], y[i, j] = value(table[m, s]), table[m, s].test_acc

    def mean_rho(rows: np.ndarray) -> float:
        rhos = []
        for j in range(len(seeds)):
            xs, ys = x[rows, j], y[rows, j]
            ok = ~(np.isnan(xs) | np.isnan(ys))
            if ok.sum() > 2 and np.ptp(xs[ok]) > 0 and np.ptp(ys[ok]) > 0:
                rhos.append(spearmanr(xs[ok], ys[ok]).statistic)
        return float(np.mean(rhos)) if rhos else math.nan

    point = mean_rho(np.arange(len(methods)))
    rng = np.random.default_rng(rng_seed)
    boots = [mean_rho(rng.integers(len(methods), size=len(methods))) for _ in range(bootstrap)]
    boots = [b for b in boots if not math.isnan(b)]
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (math.nan, math.nan)
    ok = ~(np.isnan(x) | np.isnan(y))
    pooled = spearmanr(x[ok], y[ok]).statistic if ok.sum() > 2 else math.nan
    return point, float(lo), float(hi), float(pooled)


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, Args]:
    """(preset, fine-tuning config, arguments) of a command line; no side effects."""
    preset, cfg, args = parse_script(argv, __doc__.split("\n\n")[0], Args(), "reward candidates")
    if args.seeds < 2:
        raise ConfigError("--seeds must be >= 2 (a correlation within one seed is not enough)")
    from controllers.spec import check_levels

    try:
        specs = schedules(args)
    except ValueError:
        raise ConfigError(f"--uniform {args.uniform!r}: comma-separated numbers") from None
    for spec in specs:
        check_levels(spec, cfg, "--uniform")
    return preset, cfg, args


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args = parse(argv)
    specs = schedules(args)

    from controllers.atomic_files import write_text
    from controllers.tune_runs import TrialResources, run_controllers
    from experiments.report import write_json
    from trainables.preflight import check_inputs

    check_inputs(cfg)
    out = Path(args.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    from controllers.cluster import start_ray

    start_ray(None, args.concurrency, flag="--concurrency")
    t0 = time.perf_counter()
    seeds = [SEED_BASE + i for i in range(args.seeds)]
    runs = run_controllers(
        specs, seeds, cfg, out / "tune", "spread", TrialResources(1, 0, args.concurrency),
        args.resume,
    )  # fmt: skip
    rows = []
    for name, (value, real_labels) in CANDIDATES.items():
        rho, lo, hi, pooled = within_seed_correlation(runs, value, args.bootstrap)
        rows.append(CandidateScore(name, real_labels, rho, (lo, hi), pooled))
    wall = time.perf_counter() - t0
    command = command_line("experiments/reward_candidates.py", argv)
    table = (
        "| candidate reward | uses real labels | Spearman rho within seed (mean) | 95% CI "
        "| pooled rho |\n|---|---|---|---|---|\n"
    )
    table += "".join(
        f"| {r.candidate} | {'YES' if r.uses_real_labels else 'no'} "
        f"| {r.rho_within_seed:+.2f} | [{r.ci95[0]:+.2f}, {r.ci95[1]:+.2f}] "
        f"| {r.rho_pooled:+.2f} |\n"
        for r in rows
    )
    per_run = (
        "| schedule | seed | real acc | syn acc | syn NLL | fonts acc | few-shot acc | photo KL |\n"
    )
    per_run += "|---|---|---|---|---|---|---|---|\n" + "".join(
        f"| {r.method} | {r.seed} | {100 * r.test_acc:.1f} "
        f"| {100 * r.proxy_accs['synthetic']:.1f} | {r.proxy_nlls['synthetic']:.3f} "
        f"| {100 * r.proxy_accs['heldout_fonts']:.1f} "
        f"| {100 * r.proxy_accs['real_fewshot']:.1f} | {r.imagenet_kl:.2f} |\n"
        for r in sorted(runs, key=lambda r: (r.method, r.seed))
    )
    write_json(
        out / "reward_candidates.json",
        {"command": command, "finetune_config": dataclasses.asdict(cfg),
         "args": dataclasses.asdict(args), "candidates": [dataclasses.asdict(r) for r in rows],
         "runs": [r.to_dict() for r in runs], "wall_s": wall},
    )  # fmt: skip
    write_text(
        out / "reward_candidates.md",
        f"# Reward candidates ({preset} preset, {args.seeds} seeds, {len(specs)} schedules)\n\n"
        f"Command: `{command}`\n\nHow well each candidate reward ranks fine-tuning runs by real "
        f"mean per-class accuracy. Spearman rho is computed across schedules within each "
        f"seed and averaged over seeds; the interval resamples schedules "
        f"({args.bootstrap} bootstrap draws).\n\n{table}\n## Runs\n\n{per_run}\n"
        f"Wall time: {wall / 60:.1f} min.\n",
    )
    print("\n" + table)
    print(f"[asg] reward candidates done in {wall / 60:.1f} min; results in {out}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
