"""power.md: a power study's result (as power.json holds it) as Markdown, a section a variant."""

from __future__ import annotations

from typing import Any


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Power study\n\nCommand: `{result['command']}`\n"]
    for name, e in result["variants"].items():
        lines += _variant(name, e, result["target_half_width"])
    return "\n".join(lines)


def _variant(name: str, e: dict[str, Any], target: float) -> list[str]:
    lines = [f"## {name}\n"]
    lines.append("| schedule | n | real mean-class acc (mean ± sd) | proxy acc | diverged |")
    lines.append("|---|---|---|---|---|")
    for s, r in e["schedules"].items():
        lines.append(
            f"| `{s}` | {r['n']} | {r['mean']:.1f} ± {r['sd']:.1f} | "
            f"{100 * r['proxy_mean']:.1f} | {r['diverged']} |"
        )
    if "two_way" in e:
        lines += _anova(e, target)
    if "per_layer_vs_uniform" in e:
        d = e["per_layer_vs_uniform"]
        lines.append(
            f"\nBest per-layer schedule `{d['a']}` − best uniform `{d['b']}`: "
            f"{d['mean']:+.2f} points, 95% interval {_interval(d)} over {d['n']} "
            f"seeds (both picked as the best of their kind on these same seeds, so the "
            f"difference is optimistic)."
        )
    lines.append(
        f"\nRun cost: wall time (env builds included) / SGD windows = {e['cost_ratio']:.2f}; "
        f"{e['mean_run_s']:.1f} s per run.\n"
    )
    return lines


def _anova(e: dict[str, Any], target: float) -> list[str]:
    """The ANOVA paragraphs and the table of every schedule against the best."""
    a = e["two_way"]
    lines = [
        f"\nTwo-way ANOVA over {a['n_seeds']} seeds: seed sd {a['seed_sd']:.2f}, schedule "
        f"sd {a['schedule_sd']:.2f} (p = {a['schedule_p']:.2g}), residual sd "
        f"{a['residual_sd']:.2f}; **paired sd {a['paired_sd']:.2f}** points (proxy: "
        f"{e['proxy_paired_sd']:.2f}).\n"
    ]
    if "two_way_in_range" in e:
        b = e["two_way_in_range"]
        lines.append(
            f"In range ({len(e['in_range'])} schedules whose final proxy is at least "
            f"the head start's): schedule sd {b['schedule_sd']:.2f} (p = "
            f"{b['schedule_p']:.2g}), residual sd {b['residual_sd']:.2f}; **paired sd "
            f"{b['paired_sd']:.2f}** points.\n"
        )
    if "noisiest_pair" in e:
        d = e["noisiest_pair"]
        lines.append(
            f"Noisiest pair{' in range' if 'two_way_in_range' in e else ''}: `{d['a']}` − "
            f"`{d['b']}`, paired sd {d['sd']:.2f}; **{e['seeds_for_target']} seeds** give "
            f"every pair a 95% half-width of at most {target:g} point at that sd.\n"
        )
    lines.append(
        "| best − schedule | n | difference | 95% interval | paired sd | detectable at 80% |"
    )
    lines.append("|---|---|---|---|---|---|")
    for d in e["pairs_vs_best"]:
        lines.append(
            f"| `{d['a']}` − `{d['b']}` | {d['n']} | {d['mean']:+.2f} | {_interval(d)} | "
            f"{d['sd']:.2f} | {d['detectable_80']:.2f} |"
        )
    return lines


def _interval(d: dict[str, Any]) -> str:
    """A paired difference's 95% interval, '[-0.87, +1.68]'."""
    lo, hi = d["mean"] - d["half_width_95"], d["mean"] + d["half_width_95"]
    return f"[{lo:+.2f}, {hi:+.2f}]"
