"""Results a person can read: a Markdown table, a JSON record and the policy-behaviour plot,
each written whole or not at all (`controllers.atomic_files`)."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers import atomic_files

if TYPE_CHECKING:  # envs imports torch: annotations only, results writers stay light
    from envs.summary import RunSummary


def paired_difference(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """Mean of a[seed] - b[seed] over the seeds both have, and the half-width of its 95%
    Student-t confidence interval: (mean, half_width, n). nan half-width below 2 pairs."""
    from scipy.stats import t

    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b)) if not math.isnan(a[s] - b[s])]
    n = len(diffs)
    if n == 0:
        return math.nan, math.nan, 0
    mean = statistics.fmean(diffs)
    if n < 2:
        return mean, math.nan, n
    half = float(t.ppf(0.975, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    return mean, half, n


@dataclass(frozen=True)
class MethodRow:
    """One method's row of a results table (`summarise`); results files hold
    `dataclasses.asdict(row)` under "table"."""

    method: str
    kind: str
    runs: int
    test_acc_mean: float
    test_acc_std: float
    proxy_acc_mean: float
    imagenet_top5_mean: float
    imagenet_kl_mean: float
    diverged: int
    """Runs that diverged."""
    wall_s_mean: float
    vs_reference: float
    """Mean paired (same seed) difference in real test accuracy to the reference row; nan on
    the reference row itself and without a reference."""
    vs_reference_ci95: float
    """Half-width of that difference's 95% t-interval."""
    pairs: int
    """Seeds paired with the reference."""


@dataclass(frozen=True)
class ProxyCorrelation:
    """How one proxy split's final accuracy ranks runs against real test accuracy."""

    proxy: str
    runs: int
    spearman_vs_real: float


def summarise(
    runs: Sequence[RunSummary], reference: str | None = None
) -> tuple[list[MethodRow], str | None]:
    """One row per method: mean/std of real test and proxy accuracy, ImageNet retention, and
    the paired difference (same seeds) to `reference`, by default the best `baseline` row by
    mean real accuracy. Returns (rows, the reference used)."""
    by_method: dict[str, list[RunSummary]] = defaultdict(list)
    for run in runs:
        by_method[run.method].append(run)
    if reference is None:
        baselines = [m for m, rs in by_method.items() if rs[0].kind == "baseline"]
        scores = {m: _mean([r.test_acc for r in by_method[m]]) for m in baselines}
        scores = {m: v for m, v in scores.items() if not math.isnan(v)}
        reference = max(scores, key=scores.__getitem__) if scores else None
    ref = by_seed(runs, reference, real_acc)
    rows = []
    for method, rs in by_method.items():
        test = [r.test_acc for r in rs]
        diff, half, pairs = paired_difference(by_seed(rs, method, real_acc), ref)
        compared = bool(reference) and method != reference
        rows.append(
            MethodRow(
                method=method,
                kind=rs[0].kind,
                runs=len(rs),
                test_acc_mean=_mean(test),
                test_acc_std=_std(test),
                proxy_acc_mean=_mean([r.proxy_acc for r in rs]),
                imagenet_top5_mean=_mean([r.imagenet_top5 for r in rs]),
                imagenet_kl_mean=_mean([r.imagenet_kl for r in rs]),
                diverged=sum(bool(r.diverged) for r in rs),
                wall_s_mean=_mean([r.wall_s for r in rs]),
                vs_reference=diff if compared else math.nan,
                vs_reference_ci95=half if compared else math.nan,
                pairs=pairs if compared else 0,
            )
        )
    return rows, reference


def by_seed(
    runs: Iterable[RunSummary], method: str | None, value: Callable[[RunSummary], float]
) -> dict[int, float]:
    """seed -> `value(run)` over the runs of `method`: one side of a paired comparison."""
    return {r.seed: value(r) for r in runs if r.method == method}


def real_acc(run: RunSummary) -> float:
    """A run's real-target mean per-class accuracy: what every table compares."""
    return run.test_acc


def verdict(diff: float, half: float) -> str:
    """Paired difference with its 95% interval, and what it allows one to say."""
    if math.isnan(diff):
        return ""
    if math.isnan(half):
        return f"{100 * diff:+.1f} (one pair: no interval)"
    lo, hi = diff - half, diff + half
    word = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    return f"{100 * diff:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] {word}"


def markdown_table(rows: Sequence[MethodRow], reference: str | None) -> str:
    ref_col = f"vs {reference}, paired (pts, 95% CI)" if reference else "vs reference"
    lines = [
        f"| method | kind | runs | real test mean-class acc (%) | proxy-val acc (%) | {ref_col} "
        "| ImageNet top-5 kept (%) | ImageNet KL (nats) | diverged | wall per run (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        is_ref = r.method == reference
        lines.append(
            f"| {r.method} | {r.kind} | {r.runs} | {100 * r.test_acc_mean:.1f} ± "
            f"{100 * r.test_acc_std:.1f} | {100 * r.proxy_acc_mean:.1f} "
            f"| {'(reference)' if is_ref else verdict(r.vs_reference, r.vs_reference_ci95)} "
            f"| {_pct(r.imagenet_top5_mean)} | {_num(r.imagenet_kl_mean)} "
            f"| {r.diverged} | {r.wall_s_mean:.0f} |"
        )
    return "\n".join(lines) + "\n"


def learned_verdict(rows: Sequence[MethodRow], reference: str | None) -> str:
    """One sentence per learned row: does it beat the best baseline, paired, with 95% CI?"""
    out = []
    for r in rows:
        if r.kind != "learned" or not reference:
            continue
        diff, half = r.vs_reference, r.vs_reference_ci95
        beats = not math.isnan(half) and diff - half > 0
        out.append(
            f"{r.method} {'BEATS' if beats else 'does NOT beat'} the best baseline, "
            f"{reference}: paired difference {verdict(diff, half)} over {r.pairs} seeds.\n"
        )
    return "".join(out)


def sampled_level_entropy(runs: Sequence[RunSummary]) -> float:
    """Entropy (nats) of the multiplier levels a policy sampled, per layer group, pooled over
    the windows and seeds of `runs`, averaged over the groups. Pooling over observations can
    only raise it (conditioning lowers entropy), so it bounds the policy's own mean entropy
    from above: a value well below log(levels) means the policy has stopped sampling
    uniformly. With 80 draws per group the plug-in estimate reads about 0.06 nats low."""
    counts: dict[str, Counter] = {}
    for run in runs:
        for window in run.multipliers:
            for group, m in window.items():
                counts.setdefault(group, Counter())[round(m, 12)] += 1
    if not counts:
        return float("nan")
    per_group = []
    for c in counts.values():
        total = sum(c.values())
        per_group.append(-sum(k / total * math.log(k / total) for k in c.values()))
    return sum(per_group) / len(per_group)


def proxy_correlations(runs: Sequence[RunSummary]) -> list[ProxyCorrelation]:
    """Spearman rank correlation, across runs, of each proxy's final accuracy with real test
    accuracy: how far each choice of reward can be trusted to rank fine-tuning runs."""
    from scipy.stats import spearmanr

    names = sorted({n for r in runs for n in r.proxy_accs})
    rows = []
    for name in names:
        pairs = [
            (r.proxy_accs[name], r.test_acc)
            for r in runs
            if name in r.proxy_accs and not math.isnan(r.test_acc)
        ]
        rho = spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) > 2 else math.nan
        rows.append(ProxyCorrelation(name, len(pairs), float(rho)))
    return rows


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """`payload` as indented JSON; numpy scalars as numbers, a dataclass refused (convert it
    first: `RunSummary.to_dict()`, `dataclasses.asdict(row)`), anything else unknown as text.
    The old file stays whole until the new one is complete (`controllers.atomic_files`)."""
    atomic_files.write_json(path, payload, indent=2, default=_jsonable)


def write_results(
    out: Path, stem: str, title: str, command: str, body_md: str, payload: dict[str, Any]
) -> None:
    """`<stem>.json` (`payload`, with the command first) and `<stem>.md` (the title, the command
    that reproduces it, and `body_md`) in `out`: every results file has this shape."""
    write_json(out / f"{stem}.json", {"command": command, **payload})
    atomic_files.write_text(out / f"{stem}.md", f"# {title}\n\nCommand: `{command}`\n\n{body_md}")


def plot_schedules(schedules: Sequence[Sequence[dict[str, float]]], path: Path, title: str) -> None:
    """Per-group multiplier at each window: one panel per group, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schedules = [s for s in schedules if s]
    if not schedules:
        return
    groups = list(schedules[0][0])
    fig, axes = plt.subplots(1, len(groups), figsize=(2.2 * len(groups), 2.6), sharey=True)
    for ax, group in zip(axes, groups, strict=True):
        for i, sched in enumerate(schedules):
            ax.plot(
                range(1, len(sched) + 1),
                [w[group] for w in sched],
                marker="o",
                ms=3,
                alpha=0.8,
                label=f"run {i}",
            )
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("window")
        ax.set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("lr multiplier")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_files.save_figure(fig, path, dpi=120)
    plt.close(fig)


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


def _std(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):  # would otherwise be written as its repr
        raise TypeError(
            f"{type(obj).__name__} in a results payload: write RunSummary.to_dict() or "
            "dataclasses.asdict(row)"
        )
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
