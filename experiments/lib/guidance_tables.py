"""The ablation's guidance sections: KL on against off for every row with a "(no KL)" twin,
and no guidance vs KL vs CSG on the same rates (hand-tuned, or the learned policy), each paired
on seeds with real accuracy, ImageNet retention on photos, feature energy and cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from experiments.lib.ablation_rows import LEARNED
from experiments.report import by_seed, paired_difference, real_acc, verdict

if TYPE_CHECKING:
    from envs.summary import RunSummary


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
