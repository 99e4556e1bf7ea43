"""ASG's ablation table on the embedded benchmark: which ingredient buys how much real accuracy.

How to run:
    python experiments/ablation.py                          # every row, 5 seeds, embedded preset
    python experiments/ablation.py --rows hand_tuned,hand_tuned+kl,scratch --seeds 3
    python experiments/ablation.py --policy-checkpoint runs/asg/policy

Every row gets the same fine-tuning budget (the preset's windows x iterations) and the same
evaluation seeds. The `learned+kl` row needs --policy-checkpoint (a policy meta-trained by
asg_visda.py, whose meta-training seeds are disjoint from these evaluation seeds). Writes
ablation.md, ablation.csv, ablation.json and ablation.png into --output-dir.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from trainables.cli import (
    OneLineErrorParser,
    add_config_args,
    add_preset_flag,
    config_from_args,
    preset_from_argv,
    run_main,
)
from trainables.config import PRESETS
from trainables.errors import ConfigError

KL = {"guidance": "kl"}  # weight: the config's --guidance-weight
OFF = {"guidance_weight": 0.0}
# Row name -> (controller, FinetuneConfig overrides). Order mirrors the paper's table.
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "large_lr": ({"baseline": "constant"}, OFF),
    "large_lr+kl": ({"baseline": "constant"}, KL),
    "hand_tuned": ({"baseline": "hand_tuned"}, OFF),
    "hand_tuned+kl": ({"baseline": "hand_tuned"}, KL),
    "hand_tuned+l2sp": ({"baseline": "hand_tuned"}, {"guidance": "l2sp", "guidance_weight": 1e-3}),
    "hand_tuned+feature_l2": (
        {"baseline": "hand_tuned"},
        {"guidance": "feature_l2", "guidance_weight": 0.01},
    ),
    "random+kl": ({"baseline": "random"}, KL),
    "pbt+kl": ({"pbt": True}, KL),
    "learned+kl": ({"checkpoint": None}, KL),
    "scratch": ({"baseline": "constant"}, {"pretrained": False, "guidance_weight": 0.0}),
    # Trained on real digits and scored on a disjoint half of the real test pool (see config).
    "oracle": ({"baseline": "hand_tuned"}, {"train_domain": "real", "guidance_weight": 0.0}),
}
SEED_BASE = 20_000  # disjoint from meta-training and from asg_visda's evaluation seeds


def build_parser(preset: str) -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_preset_flag(p, preset)
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    p.add_argument("--seeds", type=int, default=5, help="evaluation seeds per row")
    p.add_argument(
        "--policy-checkpoint",
        default=None,
        help="saved policy for learned+kl: the policy/ folder asg_visda.py writes",
    )
    p.add_argument("--pbt-population", type=int, default=4, help="PBT population size")
    p.add_argument("--concurrency", type=int, default=2, help="fine-tuning runs at once")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per fine-tuning run")
    p.add_argument("--gpus-per-trial", type=float, default=0, help="GPUs per fine-tuning run")
    p.add_argument("--output-dir", default="runs/ablation", help="results and Tune logs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    add_config_args(p, PRESETS[preset])
    return p


def main(argv: list[str] | None = None) -> int:
    preset = preset_from_argv(argv)
    args = build_parser(preset).parse_args(argv)
    cfg = config_from_args(args)
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"--rows: unknown row(s) {unknown}; choose from: {', '.join(ROWS)}")
    if "learned+kl" in rows and not args.policy_checkpoint:
        raise ConfigError("--rows learned+kl needs --policy-checkpoint (see asg_visda.py)")
    if args.seeds < 1:
        raise ConfigError("--seeds must be >= 1")

    from controllers.saved_policy import check_deployable
    from trainables.models import MODEL_GROUPS
    from trainables.preflight import check_inputs

    check_inputs(cfg)  # bad data, model or weights: one line, before Ray starts
    encoding = "multidiscrete"
    if "learned+kl" in rows:
        encoding = check_deployable(args.policy_checkpoint, MODEL_GROUPS[cfg.model])

    import ray

    from controllers.tune_runs import TrialResources, run_controllers, run_pbt
    from experiments.report import (
        learned_verdict,
        markdown_table,
        proxy_correlations,
        summarise,
        write_json,
    )

    out = Path(args.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    storage = out / "tune"
    ray.init(include_dashboard=False, log_to_driver=False)
    resources = TrialResources(args.cpus_per_trial, args.gpus_per_trial, args.concurrency)
    seeds = [SEED_BASE + i for i in range(args.seeds)]

    t0 = time.perf_counter()
    controllers = []
    for row in rows:
        controller, overrides = ROWS[row]
        if row == "pbt+kl":
            continue
        controller = {**controller, "method": row, "finetune": overrides}
        if "checkpoint" in controller:
            controller["checkpoint"] = str(Path(args.policy_checkpoint).resolve())
            controller["action_encoding"] = encoding
        controllers.append(controller)
    runs = run_controllers(controllers, seeds, cfg, storage, "rows", resources, args.resume)
    if "pbt+kl" in rows:
        runs += run_pbt(
            cfg,
            storage,
            resources,
            args.pbt_population,
            seeds,
            args.resume,
            name="pbt",
            method="pbt+kl",
            finetune=ROWS["pbt+kl"][1],
        )
    order = {r: i for i, r in enumerate(rows)}
    runs.sort(key=lambda r: (order.get(r["method"], 99), r["seed"]))
    reference = "hand_tuned" if "hand_tuned" in rows else None
    table_rows = summarise(runs, reference)
    table = markdown_table(table_rows, reference)
    correlations = proxy_correlations(runs)
    corr_md = "| proxy-validation split | runs | Spearman rho vs real test acc |\n|---|---|---|\n"
    corr_md += "".join(
        f"| {c['proxy']} | {c['runs']} | {c['spearman_vs_real']:+.2f} |\n" for c in correlations
    )
    command = " ".join(["python experiments/ablation.py", *(argv if argv else sys.argv[1:])])
    wall = time.perf_counter() - t0

    with open(out / "ablation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table_rows[0]))
        w.writeheader()
        w.writerows(table_rows)
    write_json(
        out / "ablation.json",
        {
            "command": command,
            "finetune_config": dataclasses.asdict(cfg),
            "rows": {r: {"controller": ROWS[r][0], "overrides": ROWS[r][1]} for r in rows},
            "table": table_rows,
            "runs": runs,
            "wall_s": wall,
        },
    )
    (out / "ablation.md").write_text(
        f"# Ablation ({preset} preset, {args.seeds} seeds)\n\nCommand: `{command}`\n\n"
        f"Real-target mean per-class accuracy (mean ± std over seeds). The '{cfg.proxy}' "
        f"proxy split is the only validation any method saw. ImageNet agreement: top-1 "
        f"agreement of the ImageNet head with the frozen pretrained model on scikit-image's "
        f"sample photos.\n\n{table}\n{learned_verdict(table_rows)}\n"
        f"## How well each proxy tracks real accuracy\n\n"
        f"Every run is scored on every proxy split at its end; rank correlation across all "
        f"runs above.\n\n{corr_md}\n"
        f"Wall time: {wall / 60:.1f} min.\n"
    )
    _bar_chart(table_rows, out / "ablation.png")
    print("\n" + table + "\n" + corr_md)
    print(f"[asg] ablation done in {wall / 60:.1f} min; results in {out}", flush=True)
    return 0


def _bar_chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(rows), 3.2))
    names = [r["method"] for r in rows]
    ax.bar(
        names,
        [100 * r["test_acc_mean"] for r in rows],
        yerr=[100 * r["test_acc_std"] for r in rows],
        capsize=3,
        color="tab:blue",
    )
    ax.set_ylabel("real test mean-class acc (%)")
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    run_main(main)
