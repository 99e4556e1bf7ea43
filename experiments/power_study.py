"""Power study: how noisy is the benchmark, and which schedule differences can N seeds see?

Runs static schedules (one multiplier per layer group, held for the whole run) on the same N
seeds, in worker processes that each build the benchmark once and reuse it for every seed, then
prints per schedule the mean real accuracy, and per pair of schedules the paired sd, the 95%
half-width and the smallest difference detectable at 80% power, with the seeds that a 1-point
half-width needs. `--variant` compares benchmark configurations (the levers that lower noise).

How to run:
    python experiments/power_study.py                                   # the default pair, 20 seeds
    python experiments/power_study.py --schedules landscape --seeds 20  # the landscape grid
    python experiments/power_study.py --schedules "all:0.01;backbone:0.01,head:0.1" --seeds 8
    python experiments/power_study.py --preset embedded --schedules pair --seeds 10 \\
        --variant today head_init=sgd --variant probe head_init=probe

Schedules are ';'-separated; each is '<group>:<multiplier>,...' over the model's groups or the
aliases all, backbone, early, late (unnamed groups get 0; later parts override earlier ones);
multipliers must be levels of --rate-levels. Writes runs.jsonl (one line per finished run:
rerunning the command continues a killed study), power.json and power.md into --output-dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

from controllers import atomic_files
from controllers import paired_stats as ps
from controllers.static_study import Variant, by_seed, check_schedules, cost_ratio, run_study
from trainables.cli import (
    OneLineErrorParser,
    add_config_args,
    add_preset_flag,
    config_from_args,
    preset_from_argv,
    run_main,
)
from trainables.config import PRESETS, FinetuneConfig
from trainables.errors import ConfigError

SCHEDULE_SETS: dict[str, dict[str, list[str]]] = {
    # Two in-range schedules that differ only in the backbone's rate (x2).
    "pair": {
        "log": ["backbone:0.1,head:1", "backbone:0.05,head:1"],
        "linear": ["backbone:0.2,head:1", "backbone:0.1,head:1"],
    },
    # The landscape: a uniform rate swept up to the cliff, backbone x head, early x late x head
    # (10 schedules: 20 seeds of each take about 70 minutes on 2 cores).
    "landscape": {
        "log": [
            *(f"all:{m}" for m in (0.05, 0.1, 0.2, 0.5)),
            *(f"backbone:{b},head:1" for b in (0.05, 0.1)),
            *(f"backbone:0.1,head:{h}" for h in (0.2, 0.5)),
            "backbone:0.05,head:0.2",
            "early:0.02,late:0.1,head:1",
        ],
        "linear": [*(f"all:{m}" for m in (0.1, 0.2, 0.3, 0.5, 1))],
    },
}


def build_parser(preset: str) -> OneLineErrorParser:
    p = OneLineErrorParser(description=__doc__, formatter_class=lambda prog: _Formatter(prog))
    add_preset_flag(p, "embedded")
    s = p.add_argument_group("study")
    s.add_argument(
        "--schedules",
        default="pair",
        help="';'-separated schedules, or a named set: " + ", ".join(SCHEDULE_SETS),
    )
    s.add_argument("--seeds", type=int, default=20, help="paired seeds per schedule")
    s.add_argument("--seed-base", type=int, default=50_000, help="first seed")
    s.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "FIELD=VALUE"),
        help="a benchmark configuration to compare: a name, then config fields over the "
        "preset and flags (repeat the flag for each variant; default: one, the config)",
    )
    s.add_argument("--workers", type=int, default=2, help="worker processes")
    s.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per worker")
    s.add_argument("--target", type=float, default=1.0, help="half-width (points) to plan for")
    s.add_argument("--output-dir", default="runs/power_study", help="where results go")
    add_config_args(p, PRESETS[preset])
    return p


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _variants(base: FinetuneConfig, specs: list[list[str]] | None) -> list[Variant]:
    if not specs:
        return [Variant("config", base)]
    fields = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
    out = []
    for name, *assignments in specs:
        overrides = {}
        for a in assignments:
            key, sep, value = a.partition("=")
            if not sep or key not in fields:
                raise ConfigError(f"--variant {name}: {a!r} is not <config field>=<value>")
            kind = type(getattr(base, key))
            if kind is bool:
                overrides[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                try:
                    overrides[key] = kind(value) if kind is not type(None) else value
                except ValueError:
                    raise ConfigError(f"--variant {name}: {a!r}: not a {kind.__name__}") from None
        out.append(Variant(name, base.replace(**overrides)))
    if len({v.name for v in out}) != len(out):
        raise ConfigError("--variant names must differ")
    return out


def _schedules(text: str, variants: list[Variant]) -> list[str]:
    if text in SCHEDULE_SETS:
        levels = {v.config.rate_levels for v in variants}
        if len(levels) > 1:
            raise ConfigError(f"--schedules {text}: the variants use different --rate-levels")
        return SCHEDULE_SETS[text][levels.pop()]
    found = [s.strip() for s in text.split(";") if s.strip()]
    if len(found) < 2 and len(variants) < 2:
        raise ConfigError("--schedules needs at least two schedules (or two --variant)")
    return found


def report(runs: list[dict], variants: list[Variant], schedules: list[str], target: float) -> dict:
    """Every variant's schedule means, two-way ANOVA and pairs, as one JSON-able dict."""
    out: dict = {"variants": {}}
    for v in variants:
        table = by_seed(runs, v.name)
        proxy = by_seed(runs, v.name, "proxy_acc")
        names = [s for s in schedules if s in table]
        rows = {
            s: {
                "n": len(table[s]),
                "mean": float(sum(table[s].values()) / len(table[s])),
                "sd": _sd(list(table[s].values())),
                "proxy_mean": float(sum(proxy[s].values()) / len(proxy[s])) / 100.0,
                "diverged": sum(
                    r["diverged"] for r in runs if (r["variant"], r["schedule"]) == (v.name, s)
                ),
            }
            for s in names
        }
        entry: dict = {"config": dataclasses.asdict(v.config), "schedules": rows}
        if len(names) >= 2:
            mat, seeds = ps.complete_table(table, names)
            aov = ps.two_way(mat)
            entry["two_way"] = dataclasses.asdict(aov) | {"paired_sd": aov.paired_sd}
            # In range: schedules that leave the proxy no worse than the head start (the proxy,
            # not real labels, says which schedules wrecked the model).
            initial = by_seed(runs, v.name, "initial_proxy_acc")
            in_range = [
                s
                for s in names
                if rows[s]["proxy_mean"] >= sum(initial[s].values()) / len(initial[s]) / 100.0
            ]
            entry["in_range"] = in_range
            if len(in_range) >= 2:
                aov_in = ps.two_way(ps.complete_table(table, in_range)[0])
                entry["two_way_in_range"] = dataclasses.asdict(aov_in) | {
                    "paired_sd": aov_in.paired_sd
                }
            pmat, _ = ps.complete_table(proxy, names)
            entry["proxy_paired_sd"] = ps.two_way(pmat).paired_sd
            best = max(names, key=lambda s: rows[s]["mean"])
            pairs = [ps.paired(best, s, table) for s in names if s != best]
            entry["best"] = best
            entry["pairs_vs_best"] = [dataclasses.asdict(d) for d in pairs]
            uniform = [s for s in names if s.startswith("all:") and "," not in s]
            layered = [s for s in names if s not in uniform]
            if uniform and layered:  # does a per-layer choice beat the best single rate?
                bu = max(uniform, key=lambda s: rows[s]["mean"])
                bl = max(layered, key=lambda s: rows[s]["mean"])
                entry["per_layer_vs_uniform"] = dataclasses.asdict(ps.paired(bl, bu, table))
            noise = entry.get("two_way_in_range", entry["two_way"])["paired_sd"]
            entry["seeds_for_target"] = ps.seeds_for_half_width(noise, target)
        mine = [r for r in runs if r["variant"] == v.name]
        entry["cost_ratio"] = cost_ratio(mine)
        entry["mean_run_s"] = sum(r["run_s"] for r in mine) / max(len(mine), 1)
        out["variants"][v.name] = entry
    out["target_half_width"] = target
    return out


def _sd(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    m = sum(values) / n
    return math.sqrt(sum((x - m) ** 2 for x in values) / (n - 1))


def markdown(result: dict, command: str) -> str:
    lines = [f"# Power study\n\nCommand: `{command}`\n"]
    target = result["target_half_width"]
    for name, e in result["variants"].items():
        lines.append(f"## {name}\n")
        lines.append("| schedule | n | real mean-class acc (mean ± sd) | proxy acc | diverged |")
        lines.append("|---|---|---|---|---|")
        for s, r in e["schedules"].items():
            lines.append(
                f"| `{s}` | {r['n']} | {r['mean']:.1f} ± {r['sd']:.1f} | "
                f"{100 * r['proxy_mean']:.1f} | {r['diverged']} |"
            )
        if "two_way" in e:
            a = e["two_way"]
            lines.append(
                f"\nTwo-way ANOVA over {a['n_seeds']} seeds: seed sd {a['seed_sd']:.2f}, schedule "
                f"sd {a['schedule_sd']:.2f} (p = {a['schedule_p']:.2g}), residual sd "
                f"{a['residual_sd']:.2f}; **paired sd {a['paired_sd']:.2f}** points (proxy: "
                f"{e['proxy_paired_sd']:.2f}). Seeds for a 95% half-width of {target:g} point "
                f"(at the in-range paired sd where there is one): {e['seeds_for_target']}.\n"
            )
            if "two_way_in_range" in e:
                b = e["two_way_in_range"]
                lines.append(
                    f"In range ({len(e['in_range'])} schedules whose final proxy is at least "
                    f"the head start's): schedule sd {b['schedule_sd']:.2f} (p = "
                    f"{b['schedule_p']:.2g}), residual sd {b['residual_sd']:.2f}; **paired sd "
                    f"{b['paired_sd']:.2f}** points.\n"
                )
            lines.append(
                "| best − schedule | n | difference | 95% interval | paired sd "
                "| detectable at 80% |"
            )
            lines.append("|---|---|---|---|---|---|")
            for d in e["pairs_vs_best"]:
                lo, hi = d["mean"] - d["half_width_95"], d["mean"] + d["half_width_95"]
                lines.append(
                    f"| `{d['a']}` − `{d['b']}` | {d['n']} | {d['mean']:+.2f} | "
                    f"[{lo:+.2f}, {hi:+.2f}] | {d['sd']:.2f} | {d['detectable_80']:.2f} |"
                )
        if "per_layer_vs_uniform" in e:
            d = e["per_layer_vs_uniform"]
            lo, hi = d["mean"] - d["half_width_95"], d["mean"] + d["half_width_95"]
            lines.append(
                f"\nBest per-layer schedule `{d['a']}` − best uniform `{d['b']}`: "
                f"{d['mean']:+.2f} points, 95% interval [{lo:+.2f}, {hi:+.2f}] over {d['n']} "
                f"seeds (both picked as the best of their kind on these same seeds, so the "
                f"difference is optimistic)."
            )
        lines.append(
            f"\nRun cost: wall time (env builds included) / SGD windows = {e['cost_ratio']:.2f}; "
            f"{e['mean_run_s']:.1f} s per run.\n"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """One panel per variant: each schedule's mean real accuracy with its 95% t-interval over
    seeds, uniform rates in grey, per-layer schedules in blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = result["variants"]
    fig, axes = plt.subplots(
        1, len(variants), figsize=(5 * len(variants), 4.5), squeeze=False, sharey=True
    )
    for ax, (name, e) in zip(axes[0], variants.items(), strict=True):
        labels = list(e["schedules"])
        means = [e["schedules"][s]["mean"] for s in labels]
        errs = [
            ps.half_width(e["schedules"][s]["sd"], e["schedules"][s]["n"])
            if e["schedules"][s]["n"] > 1
            else 0.0
            for s in labels
        ]
        colors = ["0.6" if s.startswith("all:") and "," not in s else "tab:blue" for s in labels]
        ax.barh(range(len(labels)), means, xerr=errs, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("real mean-class accuracy (%), 95% interval over seeds")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    atomic_files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def parse(argv: list[str] | None) -> tuple[list[Variant], list[str], argparse.Namespace]:
    """(variants, schedules, flags) of a command line; no side effects."""
    preset = preset_from_argv(argv, default="embedded")
    args = build_parser(preset).parse_args(argv)
    if args.seeds < 2 or args.workers < 1 or args.threads_per_worker < 1:
        raise ConfigError("--seeds must be >= 2, --workers and --threads-per-worker >= 1")
    variants = _variants(config_from_args(args), args.variant)
    schedules = _schedules(args.schedules, variants)
    check_schedules(variants, schedules)
    return variants, schedules, args


def main(argv: list[str] | None = None) -> int:
    variants, schedules, args = parse(argv)
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    out = Path(args.output_dir)
    total = len(variants) * len(schedules) * len(seeds)
    print(
        f"[power] {len(variants)} variant(s) x {len(schedules)} schedules x {len(seeds)} seeds "
        f"= {total} runs, {args.workers} workers -> {out}",
        flush=True,
    )
    t0 = time.perf_counter()

    def progress(r: dict, done: int, total: int) -> None:
        print(
            f"[power] {done}/{total} {r['variant']} `{r['schedule']}` seed {r['seed']}: real "
            f"{100 * r['test_acc']:.1f}% proxy {100 * r['proxy_acc']:.1f}% ({r['run_s']:.0f} s)",
            flush=True,
        )

    runs = run_study(
        variants,
        schedules,
        seeds,
        out / "runs.jsonl",
        args.workers,
        args.threads_per_worker,
        progress,
    )
    result = report(runs, variants, schedules, args.target)
    command = "python experiments/power_study.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    result["command"] = command
    result["wall_s"] = time.perf_counter() - t0
    atomic_files.write_json(out / "power.json", result, indent=1)
    text = markdown(result, command)
    atomic_files.write_text(out / "power.md", text)
    plot(result, out / "power.png")
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
