"""What the learning curve writes: learning_curve.md (real accuracy against meta-training
budget, each point paired with the untrained snapshot and with the best baseline of an
ablation.json on the same seeds, and the entropy of the levels each snapshot sampled),
learning_curve.json and the learning_curve.png curve."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from controllers.atomic_files import save_figure, write_text
from envs.actions import levels_of
from experiments.lib.curve_config import CurveConfig
from experiments.lib.study import StudyFlags
from experiments.report import (
    MethodRow,
    by_seed,
    paired_difference,
    real_acc,
    sampled_level_entropy,
    summarise,
    verdict,
    write_json,
)
from trainables.config import FinetuneConfig

if TYPE_CHECKING:
    from controllers.meta_train import Snapshot
    from envs.summary import RunSummary


def write_curve_results(
    out: Path,
    command: str,
    preset: str,
    cfg: FinetuneConfig,
    meta_cfg: FinetuneConfig,
    args: CurveConfig,
    flags: StudyFlags,
    curve: dict[str, Snapshot],
    runs: list[RunSummary],
    baseline_runs: list[RunSummary] | None,
    wall_s: dict[str, float],
) -> str:
    """learning_curve.md / .json / .png; returns the markdown table. A snapshot none of whose
    runs finished has no row."""
    rows, _ = summarise(runs, reference=None)
    row_of = {r.method: r for r in rows}
    ref_name, ref = None, {}
    if baseline_runs:
        _, ref_name = summarise(baseline_runs)
        ref = by_seed(baseline_runs, ref_name, real_acc)
    first = next(iter(curve), None)
    untrained = by_seed(runs, first, real_acc) if first and curve[first].milestone == 0 else {}
    uniform = math.log(len(levels_of(cfg.rate_levels)))
    lines = [
        f"| meta-training runs | policy | real test acc (%) | proxy acc (%) "
        f"| vs untrained, paired (pts, 95% CI) "
        f"| vs {ref_name or 'best baseline'}, paired (pts, 95% CI) "
        f"| sampled-level entropy (nats; uniform {uniform:.2f}) |",
        "|---|---|---|---|---|---|---|",
    ]
    points, plotted = [], []
    for method, snap in curve.items():
        row = row_of.get(method)
        if row is None:  # none of its runs finished (collect named them)
            continue
        mine = by_seed(runs, method, real_acc)
        diff, half, n = paired_difference(mine, ref) if ref else (float("nan"),) * 2 + (0,)
        gain = paired_difference(mine, untrained) if untrained and method != first else None
        entropy = sampled_level_entropy([r for r in runs if r.method == method])
        points.append(
            {**dataclasses.asdict(snap), **dataclasses.asdict(row), "paired": [diff, half, n],
             "vs_untrained": list(gain) if gain else None, "sampled_level_entropy": entropy}
        )  # fmt: skip
        plotted.append((snap, row))
        lines.append(
            f"| {snap.episodes} | {row.method} | {100 * row.test_acc_mean:.1f} ± "
            f"{100 * row.test_acc_std:.1f} | {100 * row.proxy_acc_mean:.1f} "
            f"| {verdict(*gain[:2]) if gain else '(reference)' if untrained else 'n/a'} "
            f"| {verdict(diff, half) if ref else 'n/a'} | {entropy:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    write_json(
        out / "learning_curve.json",
        {"command": command, "finetune_config": dataclasses.asdict(cfg),
         "meta_finetune_config": dataclasses.asdict(meta_cfg),
         "args": dataclasses.asdict(args) | dataclasses.asdict(flags),
         "reference": ref_name, "points": points, "runs": [r.to_dict() for r in runs],
         "wall_s": wall_s},
    )  # fmt: skip
    _plot(plotted, ref, out / "learning_curve.png")
    resumed = " (continued from the saved snapshots)" if flags.resume else ""
    write_text(
        out / "learning_curve.md",
        f"# Learning curve ({preset} preset, {args.seeds} evaluation seeds)\n\n"
        f"Command: `{command}`\n\n{args.algo} meta-trained on {meta_cfg.windows} windows x "
        f"{meta_cfg.iters_per_window} SGD iterations per run (proxy reward "
        f"'{cfg.reward_metric}' on the '{cfg.reward_proxy}' split); each snapshot deployed "
        f"({'greedy' if args.greedy else 'sampled'}) on the full preset, {cfg.windows} windows "
        f"x {cfg.iters_per_window} iterations, on the same seeds.\n\n{table}\n"
        f"Wall time: {wall_s['total'] / 60:.1f} min for this command; meta-training to the "
        f"last snapshot {wall_s['meta_train'] / 60:.1f} min in all{resumed}.\n",
    )
    return table


def _plot(curve: list[tuple[Snapshot, MethodRow]], ref: dict[int, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    x = [max(snap.episodes, 1) for snap, _ in curve]
    y = [100 * row.test_acc_mean for _, row in curve]
    err = [100 * row.test_acc_std for _, row in curve]
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label="learned (mean ± std)")
    if ref:
        level = 100 * sum(ref.values()) / len(ref)
        ax.axhline(level, color="tab:red", ls="--", label="best baseline")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("meta-training fine-tuning runs")
    ax.set_ylabel("real test mean-class acc (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
