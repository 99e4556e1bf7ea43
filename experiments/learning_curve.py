"""Does meta-training teach the controller anything? Real accuracy against meta-training budget.

Meta-trains one RLlib policy on the short-horizon twin of the chosen preset (the same data,
model, rates and windows, `--meta-iters-per-window` SGD iterations per window instead of the
preset's; proxy reward only, real test accuracy never computed), exports the policy after 0
(untrained), 16, 64 and 256 fine-tuning runs, then deploys each snapshot on the full preset on
the same evaluation seeds as experiments/ablation.py. With `--compare-with` an ablation.json
from those seeds, each point gets its paired difference to that file's best baseline.

How to run:
    python experiments/learning_curve.py --compare-with results/ablation_embedded/ablation.json
    python experiments/learning_curve.py --preset tiny --milestones 0,4 --seeds 2   # smoke

Writes learning_curve.md / .json / .png and the policy snapshots into --output-dir.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controllers.atomic_files import save_figure, write_text
from experiments.report import (
    MethodRow,
    by_seed,
    paired_difference,
    real_acc,
    summarise,
    verdict,
    write_json,
)
from trainables.cli import command_line, parse_script, run_main
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError

if TYPE_CHECKING:
    from controllers.meta_train import Snapshot
    from envs.summary import RunSummary


@dataclass(frozen=True)
class Args:
    algo: str = "PPO"
    """RLlib algorithm (see asg_visda.py --help)."""
    use_lstm: bool = False
    """Recurrent policy, as ASG's was."""
    meta_iters_per_window: int = 3
    """SGD iterations per window of the meta-training task (0: the preset's own)."""
    milestones: str = "0,16,64,256"
    """Meta-training episode counts at which the policy is exported and evaluated."""
    episodes_per_iteration: int = 4
    """Episodes per RLlib training iteration."""
    num_env_runners: int = 2
    """Env runners sampling meta-training episodes in parallel."""
    seeds: int = 0
    """Evaluation seeds (experiments/ablation.py's seeds, for pairing; 0: from the committed
    power study, the seeds for a 95% half-width of 1 point on a paired difference)."""
    greedy: bool = False
    """Deploy greedily instead of sampling actions as ASG does."""
    compare_with: str | None = None
    """An ablation.json on the same seeds: report each point's paired difference to its best
    baseline row."""
    concurrency: int = 2
    """Evaluation runs at once."""
    output_dir: str = "runs/learning_curve"
    """Results, snapshots and Tune logs."""
    resume: bool = False
    """Reuse finished snapshots and evaluation trials; with milestones beyond the saved
    snapshots, meta-training continues from the latest one and only new snapshots are
    evaluated."""


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, Args, list[int]]:
    """(preset, fine-tuning config, arguments, milestones) of a command line; no side
    effects."""
    preset, cfg, args = parse_script(argv, __doc__.split("\n\n")[0], Args(), "learning curve")
    try:
        milestones = sorted({int(m) for m in args.milestones.split(",") if m})
    except ValueError:
        raise ConfigError(f"--milestones {args.milestones!r}: comma-separated integers") from None
    if args.seeds == 0:
        from controllers.paired_stats import planned_seeds

        args = dataclasses.replace(args, seeds=planned_seeds(target=1.0)[0])
    if not milestones or milestones[0] < 0 or args.seeds < 2:
        raise ConfigError("--milestones must be >= 0 and --seeds >= 2")
    return preset, cfg, args, milestones


def main(argv: list[str] | None = None) -> int:
    preset, cfg, args, milestones = parse(argv)
    baseline_runs = _read_baselines(args.compare_with) if args.compare_with else None

    from controllers.algorithms import Resources, action_encoding_for, build_algo_config
    from controllers.cluster import start_ray
    from controllers.meta_train import train_with_snapshots
    from trainables.models import MODEL_GROUPS
    from trainables.preflight import check_inputs

    encoding = action_encoding_for(args.algo)
    check_inputs(cfg)
    meta_cfg = cfg.replace(iters_per_window=args.meta_iters_per_window or cfg.iters_per_window)
    out = Path(args.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    start_ray(None, max(args.num_env_runners, args.concurrency))
    t0 = time.perf_counter()

    algo_config = build_algo_config(
        args.algo,
        {"config": dataclasses.asdict(meta_cfg), "report_test": False},
        windows_per_episode=meta_cfg.windows,
        resources=Resources(num_env_runners=args.num_env_runners),
        episodes_per_iteration=args.episodes_per_iteration,
        use_lstm=args.use_lstm,
    )
    print(
        f"[asg] meta-training {args.algo} on {meta_cfg.windows} windows x "
        f"{meta_cfg.iters_per_window} iterations per run, snapshots at {milestones} runs",
        flush=True,
    )
    snapshots = train_with_snapshots(
        algo_config, milestones, out, MODEL_GROUPS[cfg.model], cfg.rate_levels
    )
    # All meta-training time, that of a run continued here included.
    meta_s = max([time.perf_counter() - t0, *(s.meta_wall_s for s in snapshots)])

    curve = curve_methods(snapshots)
    runs = evaluate_snapshots(curve, cfg, args, encoding, out)
    command = command_line("experiments/learning_curve.py", argv)
    table = write_curve_results(
        out, command, preset, cfg, meta_cfg, args, curve, runs, baseline_runs,
        {"meta_train": meta_s, "total": time.perf_counter() - t0},
    )  # fmt: skip
    print("\n" + table)
    print(f"[asg] learning curve done; results in {out}", flush=True)
    return 0


def curve_methods(snapshots: list[Snapshot]) -> dict[str, Snapshot]:
    """The method name each snapshot's evaluation runs carry -> that snapshot, in milestone
    order: made once, so that runs and table rows find their snapshot by name."""
    return {f"learned @{s.milestone}": s for s in sorted(snapshots, key=lambda s: s.milestone)}


def evaluate_snapshots(
    curve: dict[str, Snapshot], cfg: FinetuneConfig, args: Args, encoding: str, out: Path
) -> list[RunSummary]:
    """Each snapshot of `curve` (see `curve_methods`) deployed on the evaluation seeds; with
    --resume, snapshots that an earlier learning_curve.json in `out` already evaluated (same
    config and seeds) are not run again."""
    from controllers.spec import learned
    from controllers.tune_runs import TrialResources, run_controllers
    from experiments.ablation import SEED_BASE

    seeds = [SEED_BASE + i for i in range(args.seeds)]
    earlier = _evaluated_before(out / "learning_curve.json", cfg, seeds) if args.resume else []
    done = {r.method for r in earlier}
    todo = [m for m in curve if m not in done]
    runs = [r for r in earlier if r.method in curve]
    if todo:
        specs = [learned(m, curve[m].path, encoding, greedy=args.greedy) for m in todo]
        name = "evaluate_" + "_".join(str(curve[m].milestone) for m in todo)
        runs += run_controllers(
            specs, seeds, cfg, out / "tune", name, TrialResources(1, 0, args.concurrency),
            args.resume,
        )  # fmt: skip
    return runs


def write_curve_results(
    out: Path,
    command: str,
    preset: str,
    cfg: FinetuneConfig,
    meta_cfg: FinetuneConfig,
    args: Args,
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
    lines = [
        f"| meta-training runs | policy | real test acc (%) | proxy acc (%) "
        f"| vs {ref_name or 'best baseline'}, paired (pts, 95% CI) |",
        "|---|---|---|---|---|",
    ]
    points, plotted = [], []
    for method, snap in curve.items():
        row = row_of.get(method)
        if row is None:  # none of its runs finished (collect named them)
            continue
        mine = by_seed(runs, method, real_acc)
        diff, half, n = paired_difference(mine, ref) if ref else (float("nan"),) * 2 + (0,)
        points.append(
            {**dataclasses.asdict(snap), **dataclasses.asdict(row), "paired": [diff, half, n]}
        )
        plotted.append((snap, row))
        lines.append(
            f"| {snap.episodes} | {row.method} | {100 * row.test_acc_mean:.1f} ± "
            f"{100 * row.test_acc_std:.1f} | {100 * row.proxy_acc_mean:.1f} "
            f"| {verdict(diff, half) if ref else 'n/a'} |"
        )
    table = "\n".join(lines) + "\n"
    write_json(
        out / "learning_curve.json",
        {"command": command, "finetune_config": dataclasses.asdict(cfg),
         "meta_finetune_config": dataclasses.asdict(meta_cfg), "args": dataclasses.asdict(args),
         "reference": ref_name, "points": points, "runs": [r.to_dict() for r in runs],
         "wall_s": wall_s},
    )  # fmt: skip
    _plot(plotted, ref, out / "learning_curve.png")
    resumed = " (continued from the saved snapshots)" if args.resume else ""
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


def _evaluated_before(path: Path, cfg: FinetuneConfig, seeds: list[int]) -> list[RunSummary]:
    """Evaluation runs of an earlier learning_curve.json in the same folder, when that file
    evaluated the same fine-tuning config on the same seeds: `--resume` with more milestones
    evaluates only the new snapshots."""
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    if old.get("finetune_config") != json.loads(json.dumps(dataclasses.asdict(cfg))):
        return []
    by_method: dict[str, list[RunSummary]] = {}
    for r in _runs_in(old.get("runs", []), f"--resume: {path}"):
        by_method.setdefault(r.method, []).append(r)
    return [r for rs in by_method.values() if sorted(r.seed for r in rs) == seeds for r in rs]


def _read_baselines(path: str) -> list[RunSummary]:
    try:
        runs = json.loads(Path(path).read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--compare-with {path}: not an ablation.json ({exc})") from None
    return [r for r in _runs_in(runs, f"--compare-with {path}") if r.kind == "baseline"]


def _runs_in(runs: list, where: str) -> list[RunSummary]:
    """A results file's "runs" read back; a ConfigError naming `where` if one is not a run."""
    from envs.summary import RunSummary

    try:
        return [RunSummary.from_dict(r) for r in runs]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


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


if __name__ == "__main__":
    run_main(main)
