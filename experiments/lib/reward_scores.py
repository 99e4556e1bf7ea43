"""Candidate rewards and how well each ranks fine-tuning runs by real accuracy: the Spearman
rank correlation across schedules within each seed (what a controller can change), averaged
over seeds, with a bootstrap 95% interval over schedules, and the pooled correlation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def score_candidates(runs: list[RunSummary], bootstrap: int) -> list[CandidateScore]:
    """Every candidate of CANDIDATES scored on `runs`."""
    scores = []
    for name, (value, real_labels) in CANDIDATES.items():
        rho, lo, hi, pooled = within_seed_correlation(runs, value, bootstrap)
        scores.append(CandidateScore(name, real_labels, rho, (lo, hi), pooled))
    return scores


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
