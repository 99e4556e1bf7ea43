"""power.png: one panel per variant, each schedule's mean real accuracy with its 95% t-interval
over seeds, uniform rates in grey, per-layer schedules in blue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controllers import atomic_files
from controllers import paired_stats as ps
from experiments.power.analysis import is_uniform


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = result["variants"]
    fig, axes = plt.subplots(
        1, len(variants), figsize=(5 * len(variants), 4.5), squeeze=False, sharey=True
    )
    for ax, (name, e) in zip(axes[0], variants.items(), strict=True):
        rows = e["schedules"]
        labels = list(rows)
        means = [rows[s]["mean"] for s in labels]
        errs = [
            ps.half_width(rows[s]["sd"], rows[s]["n"]) if rows[s]["n"] > 1 else 0.0 for s in labels
        ]
        colors = ["0.6" if is_uniform(s) else "tab:blue" for s in labels]
        ax.barh(range(len(labels)), means, xerr=errs, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("real mean-class accuracy (%), 95% interval over seeds")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    atomic_files.save_figure(fig, path, dpi=110)
    plt.close(fig)
