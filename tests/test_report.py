"""Paired statistics and reward-candidate correlations that the results tables are built from."""

import math

import pytest
from scipy.stats import t

from experiments.report import paired_difference, summarise, verdict
from experiments.reward_candidates import within_seed_correlation


def test_paired_difference_against_a_hand_computation():
    a = {1: 0.70, 2: 0.60, 3: 0.80}
    b = {1: 0.65, 2: 0.50, 3: 0.80, 4: 0.99}  # seed 4 is unpaired: ignored
    mean, half, n = paired_difference(a, b)
    diffs = [0.05, 0.10, 0.0]
    sd = math.sqrt(sum((d - 0.05) ** 2 for d in diffs) / 2)
    assert n == 3 and mean == pytest.approx(0.05)
    assert half == pytest.approx(t.ppf(0.975, 2) * sd / math.sqrt(3))


def test_pairing_removes_the_seed_effect():
    """A method that is 1 point better on every seed is clearly better, however much the
    seeds differ; unpaired means with these stds could not say so."""
    base = {s: 0.5 + 0.1 * (s % 3) for s in range(5)}
    better = {s: v + 0.01 for s, v in base.items()}
    mean, half, _ = paired_difference(better, base)
    assert mean == pytest.approx(0.01) and half == pytest.approx(0.0, abs=1e-9)
    assert "better" in verdict(mean, 1e-3) and "no clear" in verdict(0.01, 0.02)


def test_summary_compares_with_the_best_baseline_not_a_reference_or_learned_row():
    runs = []
    for seed in range(3):
        runs += [
            {"method": "oracle", "kind": "reference", "seed": seed, "test_acc": 0.99},
            {"method": "learned", "kind": "learned", "seed": seed, "test_acc": 0.95},
            {"method": "good", "kind": "baseline", "seed": seed, "test_acc": 0.7 + seed / 100},
            {"method": "bad", "kind": "baseline", "seed": seed, "test_acc": 0.5},
        ]
    for r in runs:
        r |= {"proxy_acc": 0.9, "diverged": False}
    rows, reference = summarise(runs)
    assert reference == "good"
    learned = next(r for r in rows if r["method"] == "learned")
    assert learned["vs_reference"] == pytest.approx(0.95 - 0.71)


def test_within_seed_correlation_sees_through_seed_offsets():
    """Within each seed the candidate ranks schedules exactly like real accuracy, although
    the seeds shift both: rho is +1 within seeds, and the pooled rho is lower."""
    runs = []
    for seed, offset in ((0, 0.0), (1, 0.3)):
        for i, m in enumerate("abcd"):
            real = 0.2 + 0.1 * i + offset
            runs.append(
                {"method": m, "seed": seed, "test_acc": real,
                 "proxy_accs": {"synthetic": 0.9 - offset + 0.01 * i}}
            )  # fmt: skip
    rho, lo, hi, pooled = within_seed_correlation(
        runs, lambda r: r["proxy_accs"]["synthetic"], bootstrap=50
    )
    assert rho == pytest.approx(1.0) and lo <= 1.0 <= hi + 1e-9
    assert pooled < 0.5


def test_kl_on_off_is_compared_pairwise_with_retention():
    from experiments.ablation import guidance_comparison

    runs = []
    for seed in range(3):
        runs += [
            {"method": "hand_tuned", "seed": seed, "test_acc": 0.60 + seed / 100,
             "imagenet_kl": 0.5, "imagenet_top5": 0.2},
            {"method": "hand_tuned (no KL)", "seed": seed, "test_acc": 0.58,
             "imagenet_kl": 3.0 + seed, "imagenet_top5": 0.1},
        ]  # fmt: skip
    md = guidance_comparison(runs, ["hand_tuned", "hand_tuned (no KL)", "random"])
    line = next(x for x in md.splitlines() if x.startswith("| hand_tuned vs"))
    assert "+3.0 [+0.5, +5.5] better" in line and "0.50 / 4.00" in line and "20 / 10" in line
    assert "random" not in md  # no twin: no comparison


def test_guidance_table_pairs_each_guidance_with_none_and_prices_it_against_kl():
    from experiments.ablation import guidance_table

    runs = []
    for seed in range(4):
        for method, acc, window in (
            ("hand_tuned (no KL)", 0.50 + seed / 100, 1.0),
            ("hand_tuned", 0.52 + seed / 100, 1.5),
            ("hand_tuned + CSG", 0.60 + seed / 100, 4.5),
        ):
            runs.append(
                {"method": method, "seed": seed, "test_acc": acc, "window_s": window,
                 "imagenet_kl": 0.3, "imagenet_top5": 0.5, "test_feature_energy": 1.1}
            )  # fmt: skip
    md = guidance_table(runs, ["hand_tuned (no KL)", "hand_tuned", "hand_tuned + CSG"])
    lines = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| ")}
    assert "+10.0 [+10.0, +10.0] better" in lines["| CSG, A-pool"]
    assert "+2.0 [+2.0, +2.0] better" in lines["| KL (ASG)"]
    assert lines["| CSG, A-pool"].endswith("| 4.50 | 3.00x |")
    assert "(reference)" in lines["| none"]
    assert guidance_table(runs, ["hand_tuned", "hand_tuned + CSG"]) == ""  # no 'none' row


def test_guidance_table_compares_the_learned_policy_with_csg_against_kl():
    from experiments.ablation import guidance_table

    runs = [
        {"method": method, "seed": seed, "test_acc": acc + seed / 100, "window_s": window,
         "imagenet_kl": 0.3, "imagenet_top5": 0.5, "test_feature_energy": 1.1}
        for seed in range(3)
        for method, acc, window in (("learned", 0.55, 2.0), ("learned + CSG", 0.52, 3.0))
    ]  # fmt: skip
    md = guidance_table(runs, ["learned", "learned + CSG"])
    assert "under the learned policy" in md and "none vs KL" not in md
    lines = {line.split(" | ")[1]: line for line in md.splitlines() if line.startswith("| ")}
    assert "-3.0 [-3.0, -3.0] worse" in lines["learned + CSG"]
    assert "(reference)" in lines["learned"] and lines["learned + CSG"].endswith("| 1.50x |")
    assert guidance_table(runs, ["learned + CSG"]) == ""  # no KL row to pair with


def test_ablation_results_files_from_run_summaries(tmp_path):
    """The whole results writer on RunSummary-shaped runs: every file, every section."""
    import json

    from envs.summary import RunSummary
    from experiments.ablation import write_ablation_results
    from trainables.config import preset

    rows = ["hand_tuned (no KL)", "hand_tuned", "hand_tuned + CSG", "random"]
    runs = [
        RunSummary(
            method=m, kind="baseline", seed=s, proxy_acc=0.8, episode_return=0.1,
            diverged=False, wall_s=10.0, test_acc=0.5 + 0.05 * i + s / 100,
            proxy_accs={"synthetic": 0.8 + i / 50, "heldout_fonts": 0.7 + i / 50},
            imagenet_kl=0.5, imagenet_top5=0.4, test_feature_energy=1.2, window_s=1.0 + i,
            multipliers=[{"head": 1.0}],
        ).to_dict()
        for i, m in enumerate(rows)
        for s in range(3)
    ]  # fmt: skip
    write_ablation_results(tmp_path, "CMD", "tiny", preset("tiny"), 3, rows, runs, t0=0.0)
    md = (tmp_path / "ablation.md").read_text()
    assert md.startswith("# Ablation (tiny preset, 3 seeds)\n\nCommand: `CMD`")
    assert "## Proxy guidance: KL on vs off" in md and "## Guidance: none vs KL vs CSG" in md
    assert "| hand_tuned + CSG |" in md and "## How well each proxy tracks" in md
    payload = json.loads((tmp_path / "ablation.json").read_text())
    assert payload["command"] == "CMD" and payload["reference"] == "random"
    assert len(payload["runs"]) == 12 and (tmp_path / "ablation.png").stat().st_size > 0
    assert (tmp_path / "ablation.csv").read_text().count("\n") == 5
