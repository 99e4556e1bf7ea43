"""The power study: its paired statistics, its schedule language, its typed and resumable runs,
and its report of the committed studies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from controllers import paired_stats as ps
from controllers.static_study import StaticRun, Variant, parse_schedule, read_runs, run_study
from trainables.config import preset
from trainables.errors import ConfigError

RESULTS = Path(__file__).resolve().parent.parent / "results"
AVERAGING = RESULTS / "benchmark_averaging"
RUN_KEYS = [
    "variant", "schedule", "seed", "test_acc", "proxy_acc", "initial_proxy_acc",
    "episode_return", "diverged", "run_s", "sgd_s", "build_s", "pid",
]  # fmt: skip

GROUPS = ("stem", "blocks1_2", "blocks3", "blocks4_5", "blocks6_7", "head_conv", "head")
LOG = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def test_paired_difference_matches_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 5, size=12)
    a = 60 + seed_effect + rng.normal(0, 1, 12)
    b = 58 + seed_effect + rng.normal(0, 1, 12)
    by_seed = {"a": dict(enumerate(a)), "b": dict(enumerate(b))}
    d = ps.paired("a", "b", by_seed)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert d.low == pytest.approx(ci.low) and d.high == pytest.approx(ci.high)
    assert d.sd == pytest.approx(np.std(a - b, ddof=1))
    # the seed effect is large but pairing removes it
    assert d.sd < 2.0 < np.std(a, ddof=1)


def test_detectable_difference_has_the_power_it_claims():
    """Simulate paired t-tests at the detectable difference: about 80% reject."""
    rng = np.random.default_rng(1)
    n, sd = 10, 2.0
    gap = ps.detectable(sd, n)
    hits = sum(stats.ttest_1samp(rng.normal(gap, sd, n), 0).pvalue < 0.05 for _ in range(4000))
    assert 0.75 < hits / 4000 < 0.86
    assert ps.seeds_for_half_width(sd, ps.half_width(sd, 30)) == 30


def test_two_way_anova_separates_seed_schedule_and_noise():
    rng = np.random.default_rng(2)
    table = (
        np.array([0.0, 3.0, 6.0])[:, None]
        + rng.normal(0, 4, size=40)[None, :]
        + rng.normal(0, 1, size=(3, 40))
    )
    aov = ps.two_way(table)
    assert aov.schedule_sd == pytest.approx(3.0, rel=0.35)
    assert aov.seed_sd == pytest.approx(4.0, rel=0.35)
    assert aov.residual_sd == pytest.approx(1.0, rel=0.2)
    assert aov.schedule_p < 1e-6


def test_schedule_language():
    s = parse_schedule("backbone:0.01,head:1", GROUPS, LOG)
    assert s.multipliers == (0.01,) * 6 + (1.0,)
    s = parse_schedule("all:0.002, late:0.01, head:0.5", GROUPS, LOG)
    assert s.multipliers == (0.002, 0.002, 0.002, 0.01, 0.01, 0.01, 0.5)
    assert parse_schedule("head:1", GROUPS, LOG).multipliers == (0.0,) * 6 + (1.0,)
    for bad, why in [("neck:0.1", "not <group>"), ("head:0.3", "not a level"), ("head=1", "not <")]:
        with pytest.raises(ConfigError, match=why):
            parse_schedule(bad, GROUPS, LOG)


def test_power_study_runs_reports_and_resumes(tmp_path, capsys):
    from conftest import main_in_process

    from experiments import power_study

    args = [
        "--preset",
        "tiny",
        "--seeds",
        "2",
        "--schedules",
        "all:0.1;backbone:0.01,head:1",
        "--output-dir",
        tmp_path,
        "--workers",
        "1",
    ]
    code, out, _ = main_in_process(capsys, power_study.main, *args)
    assert code == 0, out
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 4 and {r["seed"] for r in runs} == {50000, 50001}
    assert all(list(r) == RUN_KEYS for r in runs)
    result = json.loads((tmp_path / "power.json").read_text())
    entry = result["variants"]["config"]
    assert entry["two_way"]["n_seeds"] == 2 and len(entry["pairs_vs_best"]) == 1
    assert "paired sd" in (tmp_path / "power.md").read_text()
    assert (tmp_path / "power.png").stat().st_size > 0
    # a rerun with one more seed runs only the new seed's two runs
    code, out, _ = main_in_process(capsys, power_study.main, *args[:3], "3", *args[4:])
    assert code == 0 and out.count("[power] ") == 3  # the header and two runs
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 6


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--schedules", "head:0.3;all:0.1"], "not a level"),
        (["--variant", "x", "no_such_field=1"], "--variant x"),
        (["--seeds", "1"], "--seeds"),
    ],
)
def test_power_study_bad_input_is_one_line(tmp_path, capsys, args, flag):
    from conftest import main_in_process

    from experiments import power_study

    code, out, err = main_in_process(
        capsys, power_study.main, "--preset", "tiny", "--output-dir", tmp_path, *args
    )
    assert code != 0 and flag in err and len(err.strip().splitlines()) == 1


def test_static_run_round_trips_and_rejects_what_is_not_a_run():
    line = json.loads(AVERAGING.joinpath("runs.jsonl").read_text().splitlines()[0])
    run = StaticRun.from_dict(line)
    assert list(run.to_dict()) == RUN_KEYS and run.to_dict() == line
    assert StaticRun.from_dict(run.to_dict()) == run
    assert run.key == (line["variant"], line["schedule"], line["seed"])
    assert isinstance(StaticRun.from_dict(line | {"build_s": 0}).build_s, float)
    missing = {k: v for k, v in line.items() if k != "pid"}
    for bad, why in [
        (line | {"wall_s": 1.0}, "unknown key"),
        (missing, "missing key"),
        (line | {"seed": "1"}, "seed"),
        (line | {"diverged": 0}, "diverged"),
        ([line], "not a JSON object"),
    ]:
        with pytest.raises(ValueError, match=why):
            StaticRun.from_dict(bad)


def test_committed_runs_read_back_and_reproduce_the_committed_study():
    """results/benchmark_averaging: every line of runs.jsonl reads back as a StaticRun, and the
    analysis of its runs gives the committed power.json's figures and power.md."""
    from experiments.power.analysis import analyse
    from experiments.power.markdown import markdown

    lines = AVERAGING.joinpath("runs.jsonl").read_text().splitlines()
    runs = read_runs(AVERAGING / "runs.jsonl")
    assert [r.to_dict() for r in runs] == [json.loads(line) for line in lines]
    committed = json.loads(AVERAGING.joinpath("power.json").read_text())
    variants = [Variant(name, preset("embedded")) for name in committed["variants"]]
    schedules = list(committed["variants"]["last"]["schedules"])
    wanted = [r for r in runs if r.schedule in schedules]
    result = analyse(wanted, variants, schedules, committed["target_half_width"])
    result |= {"command": committed["command"], "wall_s": committed["wall_s"]}
    for name, entry in result["variants"].items():
        entry["config"] = committed["variants"][name]["config"]
    assert result == committed
    assert markdown(result) == AVERAGING.joinpath("power.md").read_text()


@pytest.mark.parametrize("study", sorted(p.parent.name for p in RESULTS.glob("*/power.json")))
def test_power_md_layout_of_every_committed_study(study):
    from experiments.power.markdown import markdown

    result = json.loads((RESULTS / study / "power.json").read_text())
    assert markdown(result) == (RESULTS / study / "power.md").read_text()


def test_a_killed_runs_file_resumes_without_rerunning_its_finished_runs(tmp_path):
    """A last line cut by a kill is skipped and ended, so the next run gets a line of its own;
    a study whose runs are all in the file starts no worker."""
    lines = AVERAGING.joinpath("runs.jsonl").read_text().splitlines()[:4]
    runs_file = tmp_path / "runs.jsonl"
    runs_file.write_text("\n".join(lines) + "\n" + lines[0][:40])
    first = [StaticRun.from_dict(json.loads(line)) for line in lines]
    assert read_runs(runs_file) == first
    variants = [Variant(first[0].variant, preset("embedded"))]
    schedules = sorted({r.schedule for r in first})
    seeds = sorted({r.seed for r in first})
    done = run_study(variants, schedules, seeds, runs_file, workers=1)
    assert sorted(done, key=lambda r: r.key) == sorted(first, key=lambda r: r.key)
    assert runs_file.read_text().endswith(lines[0][:40] + "\n")
    runs_file.write_text(lines[0] + "\n" + json.dumps({"variant": "x"}) + "\n")
    with pytest.raises(ConfigError, match="line 2: not a StaticRun"):
        read_runs(runs_file)


def test_seeds_are_planned_for_the_noisiest_pair_any_pilot_measured(tmp_path):
    """planned_seeds (the ablation's and the learning curve's --seeds 0): the noisiest in-range
    pair of a power study or of an ablation's non-reference rows, the worst over the pilots."""
    from envs.summary import RunSummary

    power = tmp_path / "power.json"
    pair = {"a": "x", "b": "y", "sd": 2.0}
    power.write_text(json.dumps({"variants": {"v": {"noisiest_pair": pair}}}))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"variants": {"v": {"two_way": {"paired_sd": 1.0}}}}))
    ablation = tmp_path / "ablation.json"
    noise = {"a": [0, 0, 0], "b": [1, -1, 2], "ref": [9, -9, 9]}  # a - b: sd 1.53; ref left out

    def summary(method: str, seed: int, points: float) -> dict:
        kind = "reference" if method == "ref" else "baseline"
        return RunSummary(method=method, kind=kind, seed=seed, proxy_acc=0.5,
                          episode_return=0.0, diverged=False, wall_s=1.0,
                          test_acc=0.5 + points / 100).to_dict()  # fmt: skip

    runs = [summary(m, s, p) for m, ps_ in noise.items() for s, p in enumerate(ps_)]
    ablation.write_text(json.dumps({"runs": runs}))
    n, why = ps.planned_seeds(1.0, [power])
    assert (
        n == ps.seeds_for_half_width(2.0, 1.0)
        and "(x - y in " in why
        and why.endswith("power.json), sd 2.00")
    )
    assert ps.planned_seeds(1.0, [old])[0] == ps.seeds_for_half_width(1.0, 1.0)
    n, why = ps.planned_seeds(1.0, [ablation, old])
    assert n == ps.seeds_for_half_width(float(np.std([1, -1, 2], ddof=1)), 1.0)
    assert "a - b in" in why
    assert ps.planned_seeds(1.0, [old, power, ablation])[0] == ps.seeds_for_half_width(2.0, 1.0)
    assert ps.planned_seeds(1.0, [tmp_path / "none.json"], fallback=7)[0] == 7
