"""ASG's ablation table on the embedded benchmark: which ingredient buys how much real accuracy.

How to run:
    python experiments/ablation.py                          # every row, embedded preset
    python experiments/ablation.py --rows "hand_tuned,hand_tuned (no KL),scratch" --seeds 3
    python experiments/ablation.py --policy-checkpoint runs/asg/policy

Every row gets the same fine-tuning budget (the preset's windows x iterations) and the same
evaluation seeds. The `learned` row needs --policy-checkpoint (a policy meta-trained by
asg_visda.py, whose meta-training seeds are disjoint from these evaluation seeds). Writes
ablation.md, ablation.csv, ablation.json and ablation.png into --output-dir.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from controllers import atomic_files
from controllers.spec import ControllerSpec
from experiments.report import (
    MethodRow,
    by_seed,
    learned_verdict,
    markdown_table,
    paired_difference,
    proxy_correlations,
    real_acc,
    summarise,
    verdict,
    write_results,
)
from trainables.cli import (
    OneLineErrorParser,
    add_config_args,
    add_preset_flag,
    command_line,
    config_from_args,
    preset_from_argv,
    run_main,
)
from trainables.config import PRESETS, FinetuneConfig, protocol
from trainables.errors import ConfigError

if TYPE_CHECKING:
    from envs.summary import RunSummary

OFF = {"guidance_weight": 0.0}


def _rows() -> dict[str, ControllerSpec]:
    """Row name -> its controller (and FinetuneConfig overrides). Every row but the ones marked
    otherwise uses the config's guidance (KL, weight --guidance-weight)."""
    from controllers.spec import baseline

    def row(name: str, spec: ControllerSpec, **finetune) -> tuple[str, ControllerSpec]:
        return name, spec.with_(method=name, finetune={**spec.finetune, **finetune})

    hand = baseline("hand_tuned")
    return dict(
        [
            *(row(f"uniform {m}", baseline(f"uniform@{m}")) for m in (0.05, 0.1, 0.2, 0.5)),
            row("constant", baseline("constant")),
            row("hand_tuned", hand),
            row("cosine", baseline("cosine")),
            row("step", baseline("step")),
            row("hand_tuned (no KL)", hand, **OFF),
            row("uniform 0.1 (no KL)", baseline("uniform@0.1"), **OFF),
            row("hand_tuned + CSG", hand, guidance="csg"),
            row("hand_tuned + CSG (GAP)", hand, guidance="csg", csg_pool="gap"),
            row("hand_tuned + L2-SP", hand, guidance="l2sp", guidance_weight=1e-3),
            row("hand_tuned + feature L2", hand, guidance="feature_l2", guidance_weight=0.01),
            row("random", baseline("random")),
            row("pbt", baseline("pbt")),
            # No ImageNet statistics to keep: batch statistics, and the full base rate.
            row(
                "scratch",
                baseline("constant").with_(kind="reference"),
                pretrained=False,
                guidance_weight=0.0,
                bn_mode="train",
                head_init="sgd",  # no pretrained features to fit a probe on
            ),
            # Trained on real digits, scored on a disjoint half of the real pool (see config).
            row("oracle", hand.with_(kind="reference"), train_domain="real", guidance_weight=0.0),
        ]
    )


ROWS = _rows()
LEARNED = "learned"
LEARNED_ROWS = {"kl": (LEARNED, {}), "csg": (f"{LEARNED} + CSG", {"guidance": "csg"})}
"""--learned-guidance choice -> (row name, fine-tuning overrides of the learned row)."""
SEED_BASE = 20_000  # disjoint from meta-training and from asg_visda's evaluation seeds


def build_parser(preset: str) -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_preset_flag(p, preset)
    p.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"comma-separated rows to run; the '{LEARNED}' row is added by --policy-checkpoint",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=0,
        help="evaluation seeds per row (0: from the committed power study, the seeds for a "
        "95%% half-width of 1 point on a paired difference)",
    )
    p.add_argument(
        "--policy-checkpoint",
        default=None,
        help="add the learned row: a saved policy folder (asg_visda.py's policy/, or a "
        "learning_curve.py snapshot)",
    )
    p.add_argument("--greedy", action="store_true", help="deploy the policy greedily")
    p.add_argument(
        "--learned-guidance",
        default="kl",
        help="comma-separated guidances the learned policy is deployed with, one row each: "
        f"kl (row '{LEARNED}'), csg (row '{LEARNED} + CSG')",
    )
    p.add_argument("--concurrency", type=int, default=2, help="fine-tuning runs at once")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per fine-tuning run")
    p.add_argument("--gpus-per-trial", type=float, default=0, help="GPUs per fine-tuning run")
    p.add_argument("--output-dir", default="runs/ablation", help="results and Tune logs")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    add_config_args(p, PRESETS[preset])
    return p


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, argparse.Namespace, list[str]]:
    """(preset, fine-tuning config, flags, rows) of a command line; no side effects."""
    preset = preset_from_argv(argv)
    args = build_parser(preset).parse_args(argv)
    cfg = config_from_args(args)
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"--rows: unknown row(s) {unknown}; choose from: {', '.join(ROWS)}")
    from controllers.spec import check_levels

    for r in rows:  # every row's config and multipliers, before Ray starts (one-line errors)
        check_levels(ROWS[r], cfg, f"--rows {r!r}")
    if args.seeds == 0:
        from controllers.paired_stats import planned_seeds

        args.seeds, why = planned_seeds(target=1.0)
        print(f"[ablation] {args.seeds} seeds per row: {why}", flush=True)
    if args.seeds < 2:
        raise ConfigError("--seeds must be >= 2 (paired intervals need two pairs)")
    bad = [g for g in args.learned_guidance.split(",") if g not in LEARNED_ROWS]
    if bad:
        raise ConfigError(f"--learned-guidance {','.join(bad)}: choose from kl, csg")
    return preset, cfg, args, rows


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args, rows = parse(argv)

    from controllers.saved_policy import check_deployable
    from trainables.models import MODEL_GROUPS
    from trainables.preflight import check_inputs

    check_inputs(cfg)  # bad data, model or weights: one line, before Ray starts
    if args.policy_checkpoint:
        encoding = check_deployable(
            args.policy_checkpoint, MODEL_GROUPS[cfg.model], cfg.rate_levels
        )

    from controllers.cluster import start_ray
    from controllers.spec import learned
    from controllers.tune_runs import TrialResources, run_controllers, run_pbt

    out = Path(args.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    storage = out / "tune"
    start_ray(
        None, args.concurrency, args.cpus_per_trial, args.gpus_per_trial, flag="--concurrency"
    )
    resources = TrialResources(args.cpus_per_trial, args.gpus_per_trial, args.concurrency)
    seeds = [SEED_BASE + i for i in range(args.seeds)]

    t0 = time.perf_counter()
    specs = [ROWS[r] for r in rows if r != "pbt"]
    runs = run_controllers(specs, seeds, cfg, storage, "rows", resources, args.resume)
    if "pbt" in rows:
        runs += run_pbt(cfg, storage, resources, seeds, args.resume, spec=ROWS["pbt"])
    if args.policy_checkpoint:  # its own experiment, so that it can join a finished table
        policy = str(Path(args.policy_checkpoint).resolve())
        learned_specs = []
        for guidance in args.learned_guidance.split(","):
            name, overrides = LEARNED_ROWS[guidance]
            spec = learned(name, policy, encoding, greedy=args.greedy)
            learned_specs.append(spec.with_(finetune={**spec.finetune, **overrides}))
            rows.append(name)
        runs += run_controllers(
            learned_specs, seeds, cfg, storage, "learned", resources, args.resume
        )
    order = {r: i for i, r in enumerate(rows)}
    runs.sort(key=lambda r: (order.get(r.method, 99), r.seed))
    command = command_line("experiments/ablation.py", argv)
    table = write_ablation_results(out, command, preset, cfg, args.seeds, rows, runs, t0)
    print("\n" + table)
    wall = time.perf_counter() - t0
    print(f"[asg] ablation done in {wall / 60:.1f} min; results in {out}", flush=True)
    return 0


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


def guidance_comparison(runs: list[RunSummary], rows: list[str]) -> str:
    """Each row with KL against its "(no KL)" twin on the same seeds: real accuracy and
    ImageNet retention on photos, as paired differences with 95% intervals."""
    lines = [
        "| KL on vs off | real acc, on - off (pts, 95% CI) | photo KL on / off (nats) "
        "| photo KL, on - off (95% CI) | top-5 kept on / off (%) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        twin = f"{row} (no KL)"
        if twin not in rows:
            continue
        acc = paired_difference(by_seed(runs, row, real_acc), by_seed(runs, twin, real_acc))
        kl = paired_difference(by_seed(runs, row, _photo_kl), by_seed(runs, twin, _photo_kl))
        mean = {m: by_seed(runs, m, _photo_kl) for m in (row, twin)}
        top5 = {m: by_seed(runs, m, _photo_top5) for m in (row, twin)}

        def avg(d: dict[int, float]) -> float:
            return sum(d.values()) / max(len(d), 1)

        kl_ci = f"{kl[0]:+.2f} [{kl[0] - kl[1]:+.2f}, {kl[0] + kl[1]:+.2f}]"
        lines.append(
            f"| {row} vs {twin} ({acc[2]} seeds) | {verdict(acc[0], acc[1])} "
            f"| {avg(mean[row]):.2f} / {avg(mean[twin]):.2f} | {kl_ci} "
            f"| {100 * avg(top5[row]):.0f} / {100 * avg(top5[twin]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def _photo_kl(run: RunSummary) -> float:
    return run.imagenet_kl


def _photo_top5(run: RunSummary) -> float:
    return run.imagenet_top5


def _feature_energy(run: RunSummary) -> float:
    return run.test_feature_energy


def _window_s(run: RunSummary) -> float:
    return run.window_s


GUIDANCE_FAMILY = {
    "none": "hand_tuned (no KL)",
    "KL (ASG)": "hand_tuned",
    "CSG, GAP": "hand_tuned + CSG (GAP)",
    "CSG, A-pool": "hand_tuned + CSG",
}
"""The guidance comparison: the same hand-tuned rates, each guidance in turn."""
LEARNED_FAMILY = {"KL (ASG)": LEARNED, "CSG, A-pool": f"{LEARNED} + CSG"}
"""The same learned policy deployed with each guidance."""


def guidance_table(runs: list[RunSummary], rows: list[str]) -> str:
    """No guidance vs KL vs CSG on the hand-tuned rates, and KL vs CSG under the learned policy,
    paired on seeds: real accuracy, ImageNet retention on photos, hyperspherical energy of the
    real test features, and cost per window as a ratio to KL's (measured in this run). Each
    part is left out unless its reference row and another one ran."""
    hand = _family_table(
        runs,
        rows,
        GUIDANCE_FAMILY,
        "none",
        "Guidance: none vs KL vs CSG, paired (hand-tuned rates)",
    )
    learned = _family_table(
        runs,
        rows,
        LEARNED_FAMILY,
        "KL (ASG)",
        "Guidance under the learned policy: KL vs CSG, paired",
    )
    return hand + learned


def _family_table(
    runs: list[RunSummary], rows: list[str], family: dict[str, str], ref: str, title: str
) -> str:
    present = {k: v for k, v in family.items() if v in rows}
    if ref not in present or len(present) < 2:
        return ""

    def mean(method: str, value: Callable[[RunSummary], float]) -> float:
        values = [v for v in by_seed(runs, method, value).values() if v == v]
        return sum(values) / len(values) if values else float("nan")

    kl_window = mean(present["KL (ASG)"], _window_s) if "KL (ASG)" in present else float("nan")
    lines = [
        f"## {title}\n",
        "Feature energy: hyperspherical energy (s = 1) of the normalised real-test features, "
        "lower is more evenly spread (CSG's diagnostic; never in the reward). Cost: mean wall "
        "time per window, and its ratio to the KL row's, measured in this run.\n",
        f"| guidance | row | real acc (%) | vs {ref}, paired (pts, 95% CI) | photo KL (nats) "
        "| top-5 kept (%) | feature energy | s per window | cost vs KL |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    reference = by_seed(runs, present[ref], real_acc)
    for label, row in present.items():
        acc = by_seed(runs, row, real_acc)
        diff = "(reference)" if label == ref else verdict(*paired_difference(acc, reference)[:2])
        window = mean(row, _window_s)
        lines.append(
            f"| {label} | {row} | {100 * mean(row, real_acc):.1f} | {diff} "
            f"| {mean(row, _photo_kl):.2f} | {100 * mean(row, _photo_top5):.0f} "
            f"| {mean(row, _feature_energy):.4f} | {window:.2f} | {window / kl_window:.2f}x |"
        )
    return "\n".join(lines) + "\n\n"


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


if __name__ == "__main__":
    run_main(main)
