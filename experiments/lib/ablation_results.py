"""What the ablation writes: ablation.md (the paired table, KL on/off, the guidance comparison,
how each proxy tracks real accuracy), ablation.json, ablation.csv and the ablation.png bars."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

from controllers import atomic_files
from experiments.lib.ablation_rows import ROWS
from experiments.lib.guidance_tables import guidance_comparison, guidance_table
from experiments.report import (
    MethodRow,
    learned_verdict,
    markdown_table,
    proxy_correlations,
    summarise,
    write_results,
)
from trainables.config import FinetuneConfig, protocol

if TYPE_CHECKING:
    from envs.summary import RunSummary


def write_ablation_results(
    out: Path,
    command: str,
    preset: str,
    cfg: FinetuneConfig,
    seeds: int,
    rows: list[str],
    runs: list[RunSummary],
    t0: float,
) -> str:
    """ablation.md / .json / .csv / .png: the paired table, KL on/off, the guidance comparison
    and how each proxy tracks real accuracy. Returns the markdown table and the correlations."""
    table_rows, reference = summarise(runs)
    table = markdown_table(table_rows, reference)
    correlations = proxy_correlations([r for r in runs if r.kind != "reference"])
    corr_md = "| proxy-validation split | runs | Spearman rho vs real test acc |\n|---|---|---|\n"
    corr_md += "".join(
        f"| {c.proxy} | {c.runs} | {c.spearman_vs_real:+.2f} |\n" for c in correlations
    )
    wall = time.perf_counter() - t0
    table_dicts = [dataclasses.asdict(r) for r in table_rows]
    csv_text = io.StringIO(newline="")
    w = csv.DictWriter(csv_text, fieldnames=[f.name for f in dataclasses.fields(MethodRow)])
    w.writeheader()
    w.writerows(table_dicts)
    atomic_files.write_text(out / "ablation.csv", csv_text.getvalue())
    write_results(
        out,
        "ablation",
        f"Ablation ({preset} preset, {seeds} seeds)",
        command,
        f"Protocol: {protocol(cfg)}.\n\n"
        f"Real-target mean per-class accuracy (mean ± std over seeds). Every row ran on the "
        f"same seeds; the paired column is the mean per-seed difference to the best baseline "
        f"row ({reference}), with its 95% t-interval. The '{cfg.reward_proxy}' proxy split is the "
        f"only validation any method saw. ImageNet columns compare the ImageNet head with the "
        f"frozen pretrained model on scikit-image's sample photos: top-5 overlap and "
        f"KL(pretrained || model).\n\n{table}\n{learned_verdict(table_rows, reference)}\n"
        f"## Proxy guidance: KL on vs off, paired\n\n{guidance_comparison(runs, rows)}\n"
        f"{guidance_table(runs, rows)}"
        f"## How well each proxy tracks real accuracy\n\n"
        f"Every run is scored on every proxy split at its end; rank correlation across the "
        f"baseline and learned runs above (references left out).\n\n{corr_md}\n"
        f"Wall time: {wall / 60:.1f} min.\n",
        {
            "protocol": protocol(cfg),
            "finetune_config": dataclasses.asdict(cfg),
            "rows": {r: ROWS[r].as_config() for r in rows if r in ROWS},
            "reference": reference,
            "table": table_dicts,
            "runs": [r.to_dict() for r in runs],
            "wall_s": wall,
        },
    )
    _bar_chart(table_rows, out / "ablation.png")
    return table + "\n" + corr_md


def _bar_chart(rows: list[MethodRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(rows), 3.2))
    names = [r.method for r in rows]
    ax.bar(
        names,
        [100 * r.test_acc_mean for r in rows],
        yerr=[100 * r.test_acc_std for r in rows],
        capsize=3,
        color="tab:blue",
    )
    ax.set_ylabel("real test mean-class acc (%)")
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    atomic_files.save_figure(fig, path, dpi=120)
    plt.close(fig)
