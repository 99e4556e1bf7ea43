"""Results a person can read: a Markdown table, a JSON record and the policy-behaviour plot."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def summarise(runs: Sequence[dict[str, Any]], reference: str | None) -> list[dict[str, Any]]:
    """One row per method: mean/std of real test and proxy accuracy over its runs."""
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_method[run["method"]].append(run)
    ref = _mean([r["test_acc"] for r in by_method.get(reference or "", [])])
    rows = []
    for method, rs in by_method.items():
        test = [r["test_acc"] for r in rs]
        row = {
            "method": method,
            "runs": len(rs),
            "test_acc_mean": _mean(test),
            "test_acc_std": _std(test),
            "proxy_acc_mean": _mean([r["proxy_acc"] for r in rs]),
            "imagenet_agreement_mean": _mean([r.get("imagenet_agreement", math.nan) for r in rs]),
            "diverged": sum(bool(r.get("diverged")) for r in rs),
            "wall_s_mean": _mean([r.get("wall_s", math.nan) for r in rs]),
        }
        row["vs_reference"] = row["test_acc_mean"] - ref if reference else math.nan
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], reference: str | None) -> str:
    ref_col = f"vs {reference}" if reference else "vs reference"
    lines = [
        f"| method | runs | real test mean-class acc (%) | proxy-val acc (%) | {ref_col} (pts) "
        "| ImageNet agreement (%) | diverged | wall per run (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = r["vs_reference"]
        verdict = (
            ""
            if r["method"] == reference or math.isnan(delta)
            else (f"{100 * delta:+.1f}" + (" (not better)" if delta <= 0 else ""))
        )
        lines.append(
            f"| {r['method']} | {r['runs']} | {100 * r['test_acc_mean']:.1f} ± "
            f"{100 * r['test_acc_std']:.1f} | {100 * r['proxy_acc_mean']:.1f} | {verdict} "
            f"| {_pct(r['imagenet_agreement_mean'])} | {r['diverged']} | {r['wall_s_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def learned_verdict(rows: Sequence[dict[str, Any]]) -> str:
    """One sentence: does the learned policy beat the best non-learned method?"""
    learned = [r for r in rows if r["method"].startswith("learned")]
    others = [
        r
        for r in rows
        if not r["method"].startswith("learned")
        and r["method"] != "scratch"
        and not math.isnan(r["test_acc_mean"])
    ]
    if not learned or not others:
        return ""
    lr, best = learned[0], max(others, key=lambda r: r["test_acc_mean"])
    beats = lr["test_acc_mean"] > best["test_acc_mean"]
    return (
        f"The learned policy ({100 * lr['test_acc_mean']:.1f}%) "
        f"{'beats' if beats else 'does NOT beat'} the best non-learned method, "
        f"{best['method']} ({100 * best['test_acc_mean']:.1f}%).\n"
    )


def proxy_correlations(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spearman rank correlation, across runs, of each proxy's final accuracy with real test
    accuracy: how far each choice of reward can be trusted to rank fine-tuning runs."""
    from scipy.stats import spearmanr

    names = sorted({n for r in runs for n in r.get("proxy_accs", {})})
    rows = []
    for name in names:
        pairs = [
            (r["proxy_accs"][name], r["test_acc"])
            for r in runs
            if name in r.get("proxy_accs", {}) and not math.isnan(r["test_acc"])
        ]
        rho = spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) > 2 else math.nan
        rows.append({"proxy": name, "runs": len(pairs), "spearman_vs_real": float(rho)})
    return rows


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")


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
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


def _std(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
