"""Paired statistics and reward-candidate correlations that the results tables are built from."""

import dataclasses
import json
import math
import shlex
from pathlib import Path

import pytest
from scipy.stats import t

from envs.summary import RunSummary
from experiments.lib.reward_scores import within_seed_correlation
from experiments.report import MethodRow, paired_difference, summarise, verdict
from trainables.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def run(method: str, seed: int, test_acc: float, kind: str = "baseline", **fields) -> RunSummary:
    """A finished run with the fields a test does not care about filled in."""
    base = dict(proxy_acc=0.9, episode_return=0.0, diverged=False, wall_s=1.0)
    return RunSummary(method, kind, seed, test_acc=test_acc, **(base | fields))


def _json(record: dict) -> str:
    """A record as comparable text (NaN is not equal to itself)."""
    return json.dumps(record, sort_keys=True)


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
            run("oracle", seed, 0.99, kind="reference"),
            run("learned", seed, 0.95, kind="learned"),
            run("good", seed, 0.7 + seed / 100),
            run("bad", seed, 0.5, diverged=seed == 0),
        ]
    rows, reference = summarise(runs)
    assert reference == "good" and all(isinstance(r, MethodRow) for r in rows)
    by_method = {r.method: r for r in rows}
    assert by_method["learned"].vs_reference == pytest.approx(0.95 - 0.71)
    assert by_method["learned"].pairs == 3 and by_method["good"].pairs == 0
    assert math.isnan(by_method["good"].vs_reference)  # the reference row itself
    assert by_method["bad"].diverged == 1 and by_method["bad"].kind == "baseline"


def test_run_summary_reads_back_what_results_files_hold():
    """`from_dict(to_dict())` is the identity; a file written before a field existed reads
    with its default; a key that is no field is refused, by name."""
    full = run(
        "hand_tuned", 3, 0.61, proxy_accs={"synthetic": 0.9}, proxy_nlls={"synthetic": 0.3},
        imagenet_kl=0.5, window_s=1.5, guidance_pass_s=0.2, multipliers=[{"head": 1.0}],
    )  # fmt: skip
    assert RunSummary.from_dict(full.to_dict()) == full
    through_json = RunSummary.from_dict(json.loads(json.dumps(full.to_dict())))
    assert _json(through_json.to_dict()) == _json(full.to_dict())  # NaN != NaN: as text
    old = full.to_dict()
    del old["window_s"], old["guidance_pass_s"], old["initial_proxy_acc"]
    assert math.isnan(RunSummary.from_dict(old).window_s)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['teacher_seconds'\]"):
        RunSummary.from_dict(full.to_dict() | {"teacher_seconds": 0.2})
    with pytest.raises(ValueError, match=r"missing key\(s\) \['seed'\]"):
        RunSummary.from_dict({k: v for k, v in full.to_dict().items() if k != "seed"})


def test_committed_results_files_read_back_as_typed_runs_and_rows():
    """Every run in the committed results files is a RunSummary, and their tables have the
    columns of MethodRow: the typed records write the same files."""
    files = [
        p
        for pattern in ("*/ablation.json", "*/results.json", "*/learning_curve.json",
                        "*/reward_candidates.json")
        for p in sorted((ROOT / "results").glob(pattern))
    ]  # fmt: skip
    if not files:
        pytest.skip("no committed results files")
    columns = [f.name for f in dataclasses.fields(MethodRow)]
    for path in files:
        payload = json.loads(path.read_text())
        for raw in payload["runs"]:
            written = RunSummary.from_dict(raw).to_dict()
            assert _json({k: v for k, v in written.items() if k in raw}) == _json(raw), path
        for row in payload.get("table", []):
            assert list(row) == columns, path


def test_within_seed_correlation_sees_through_seed_offsets():
    """Within each seed the candidate ranks schedules exactly like real accuracy, although
    the seeds shift both: rho is +1 within seeds, and the pooled rho is lower."""
    runs = []
    for seed, offset in ((0, 0.0), (1, 0.3)):
        for i, m in enumerate("abcd"):
            real = 0.2 + 0.1 * i + offset
            runs.append(run(m, seed, real, proxy_accs={"synthetic": 0.9 - offset + 0.01 * i}))
    rho, lo, hi, pooled = within_seed_correlation(
        runs, lambda r: r.proxy_accs["synthetic"], bootstrap=50
    )
    assert rho == pytest.approx(1.0) and lo <= 1.0 <= hi + 1e-9
    assert pooled < 0.5


def test_kl_on_off_is_compared_pairwise_with_retention():
    from experiments.lib.guidance_tables import guidance_comparison

    runs = []
    for seed in range(3):
        runs += [
            run("hand_tuned", seed, 0.60 + seed / 100, imagenet_kl=0.5, imagenet_top5=0.2),
            run("hand_tuned (no KL)", seed, 0.58, imagenet_kl=3.0 + seed, imagenet_top5=0.1),
        ]
    md = guidance_comparison(runs, ["hand_tuned", "hand_tuned (no KL)", "random"])
    line = next(x for x in md.splitlines() if x.startswith("| hand_tuned vs"))
    assert "+3.0 [+0.5, +5.5] better" in line and "0.50 / 4.00" in line and "20 / 10" in line
    assert "random" not in md  # no twin: no comparison


def test_guidance_table_pairs_each_guidance_with_none_and_prices_it_against_kl():
    from experiments.lib.guidance_tables import guidance_table

    runs = []
    for seed in range(4):
        for method, acc, window in (
            ("hand_tuned (no KL)", 0.50 + seed / 100, 1.0),
            ("hand_tuned", 0.52 + seed / 100, 1.5),
            ("hand_tuned + CSG", 0.60 + seed / 100, 4.5),
        ):
            runs.append(
                run(method, seed, acc, window_s=window, imagenet_kl=0.3, imagenet_top5=0.5,
                    test_feature_energy=1.1)
            )  # fmt: skip
    md = guidance_table(runs, ["hand_tuned (no KL)", "hand_tuned", "hand_tuned + CSG"])
    lines = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| ")}
    assert "+10.0 [+10.0, +10.0] better" in lines["| CSG, A-pool"]
    assert "+2.0 [+2.0, +2.0] better" in lines["| KL (ASG)"]
    assert lines["| CSG, A-pool"].endswith("| 4.50 | 3.00x |")
    assert "(reference)" in lines["| none"]
    assert guidance_table(runs, ["hand_tuned", "hand_tuned + CSG"]) == ""  # no 'none' row


def test_guidance_table_compares_the_learned_policy_with_csg_against_kl():
    from experiments.lib.guidance_tables import guidance_table

    runs = [
        run(method, seed, acc + seed / 100, window_s=window, imagenet_kl=0.3, imagenet_top5=0.5,
            test_feature_energy=1.1)
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
    """The whole results writer on RunSummary runs: every file, every section."""
    from experiments.lib.ablation_results import write_ablation_results
    from trainables.config import preset

    rows = ["hand_tuned (no KL)", "hand_tuned", "hand_tuned + CSG", "random"]
    runs = [
        RunSummary(
            method=m, kind="baseline", seed=s, proxy_acc=0.8, episode_return=0.1,
            diverged=False, wall_s=10.0, test_acc=0.5 + 0.05 * i + s / 100,
            proxy_accs={"synthetic": 0.8 + i / 50, "heldout_fonts": 0.7 + i / 50},
            imagenet_kl=0.5, imagenet_top5=0.4, test_feature_energy=1.2, window_s=1.0 + i,
            multipliers=[{"head": 1.0}],
        )
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
    assert [_json(RunSummary.from_dict(r).to_dict()) for r in payload["runs"]] == [
        _json(r.to_dict()) for r in runs
    ]
    assert [MethodRow(**row) for row in payload["table"]][0].method == "hand_tuned (no KL)"
    assert (tmp_path / "ablation.csv").read_text().count("\n") == 5


def test_learning_curve_finds_each_snapshot_by_its_runs_method(tmp_path):
    """Rows meet their snapshot through the mapping made with the specs (milestone order,
    whatever the method names sort as); a snapshot with no finished run has no row."""
    from controllers.meta_train import Snapshot
    from experiments.lib.curve_config import CurveConfig
    from experiments.lib.curve_results import write_curve_results
    from experiments.lib.curve_snapshots import curve_methods
    from experiments.lib.study import StudyFlags
    from trainables.config import preset

    snaps = [Snapshot(m, m + 1, m // 4, f"/p/{m}", 10.0 * m, 0.1) for m in (256, 0, 16, 64)]
    curve = curve_methods(snaps)
    assert [s.milestone for s in curve.values()] == [0, 16, 64, 256]
    acc = {0: 0.50, 64: 0.55, 256: 0.60}  # every run of the 16-run snapshot failed
    # The untrained snapshot samples two levels for the one group equally often, the trained
    # ones a single level: entropies ln 2 and 0.
    sampled = {0: [0.1, 0.5], 64: [0.1, 0.1], 256: [0.1, 0.1]}
    runs = [
        run(
            method, seed, acc[snap.milestone] + seed / 100, kind="learned",
            multipliers=[{"head": m} for m in sampled[snap.milestone]],
        )
        for method, snap in curve.items()
        if snap.milestone in acc
        for seed in range(2)
    ]  # fmt: skip
    baselines = [run("hand_tuned", seed, 0.52 + seed / 100) for seed in range(2)]
    cfg = preset("tiny")
    table = write_curve_results(
        tmp_path, "CMD", "tiny", cfg, cfg, CurveConfig(seeds=2), StudyFlags(), curve, runs,
        baselines, {"meta_train": 60.0, "total": 120.0},
    )  # fmt: skip
    rows = [line.split(" | ")[:3] for line in table.splitlines()[2:]]
    assert rows == [["| 1", "learned @0", "50.5 ± 0.7"], ["| 65", "learned @64", "55.5 ± 0.7"],
                    ["| 257", "learned @256", "60.5 ± 0.7"]]  # fmt: skip
    payload = json.loads((tmp_path / "learning_curve.json").read_text())
    assert [p["milestone"] for p in payload["points"]] == [0, 64, 256]
    assert payload["points"][2]["paired"][:2] == pytest.approx([0.08, 0.0])
    assert payload["points"][0]["vs_untrained"] is None
    assert payload["points"][2]["vs_untrained"][:2] == pytest.approx([0.10, 0.0])
    entropies = [p["sampled_level_entropy"] for p in payload["points"]]
    assert entropies == pytest.approx([math.log(2), 0.0, 0.0])
    assert table.splitlines()[2].split(" | ")[4] == "(reference)"
    assert payload["reference"] == "hand_tuned" and len(payload["runs"]) == 6
    assert "Command: `CMD`" in (tmp_path / "learning_curve.md").read_text()


def test_results_files_record_the_command_that_reproduces_the_run(monkeypatch):
    from trainables.entry import command_line

    assert command_line("experiments/ablation.py", ["--seeds", "3"]) == (
        "python experiments/ablation.py --seeds 3"
    )
    assert command_line("experiments/ablation.py", []) == "python experiments/ablation.py"
    # What a shell would split or run is quoted: the recorded command pastes as it ran.
    schedules = ["--schedules", "all:0.1;backbone:0.1,head:0.5", "--baselines", ""]
    recorded = command_line("experiments/power_study.py", schedules)
    assert recorded == (
        "python experiments/power_study.py --schedules 'all:0.1;backbone:0.1,head:0.5' "
        "--baselines ''"
    )
    assert shlex.split(recorded)[2:] == schedules
    monkeypatch.setattr("sys.argv", ["ablation.py", "--resume"])
    assert command_line("experiments/ablation.py", None).endswith("ablation.py --resume")


def test_a_results_payload_refuses_a_record_it_would_write_as_text(tmp_path):
    from experiments.report import write_json

    with pytest.raises(TypeError, match="to_dict"):
        write_json(tmp_path / "x.json", {"runs": [run("a", 0, 0.5)]})


def test_transfer_table_pairs_the_trained_policy_with_both_references(tmp_path):
    """tools/transfer_table.py: per task, the trained policy's paired differences to the
    untrained one and to the static schedule, and the first task pooled with a curve's seeds."""
    import subprocess
    import sys

    from controllers.static_study import StaticRun

    trained, untrained = "policy@x/policy_ep0128", "policy@x/policy_ep0000"
    acc = {trained: 0.60, untrained: 0.40, "all:0.1": 0.70}
    lines = []
    for task, shift in [("seen", 0.0), ("other", -0.05)]:
        for seed in range(4):
            for schedule, a in acc.items():
                noise = 0.01 * ((seed * 7 + len(schedule)) % 3)  # paired diffs not constant
                run = StaticRun(task, schedule, seed, a + shift + noise, 0.9, 0.8, 0.1, False,
                                1.0, 1.0, 0.0, 1)  # fmt: skip
                lines.append(json.dumps(run.to_dict()))
    (tmp_path / "runs.jsonl").write_text("\n".join(lines) + "\n")
    from envs.summary import RunSummary

    pairs = [("learned @128", 0.5), ("learned @0", 0.1)]
    curve = {"runs": [RunSummary(m, "learned", 100 + s, 0.9, 0.1, False, 1.0, test_acc=a).to_dict()
                      for s in range(3) for m, a in pairs]}  # fmt: skip
    (tmp_path / "curve.json").write_text(json.dumps(curve))
    tool = Path(__file__).resolve().parent.parent / "tools" / "transfer_table.py"
    out = subprocess.run(
        [sys.executable, tool, tmp_path / "runs.jsonl", "--trained", trained, "--untrained",
         untrained, "--curve", tmp_path / "curve.json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert set(rows) == {"task", "seen", "other"}
    for task in ("seen", "other"):
        cells = [c.strip() for c in rows[task].split("|")[2:-1]]
        assert cells[3].startswith("+20.") and "(above, n=4)" in cells[3], cells
        assert cells[4].startswith("-10.") and "(below, n=4)" in cells[4], cells
    noise = [(seed * 7 + len(trained)) % 3 for seed in range(4)]
    assert f"| other | {55 + sum(noise) / 4:.1f} ± " in rows["other"]
    pooled = out.strip().splitlines()[-1]
    assert "n=7" in pooled and "untrained 2" in pooled  # 3 curve seeds + 4 of the first task
    # A file without a schedule the table needs: one line naming the file, the task and it.
    missing = subprocess.run(
        [sys.executable, tool, tmp_path / "runs.jsonl", "--trained", "policy@y"],
        capture_output=True, text=True,
    )  # fmt: skip
    err = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(err) == 1, missing.stderr
    assert "runs.jsonl: task 'seen' has no runs of" in err[0] and "policy@y" in err[0]


def test_suite_cpu_names_each_kind_of_process_and_samples_a_child(monkeypatch, tmp_path):
    """tools/suite_cpu.py: the process kinds its table sums over, and a process started after
    the sampler is seen with the CPU it spent."""
    import subprocess
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "tools"))
    import suite_cpu

    py, site = sys.executable, "/venv/lib/python3.11/site-packages"
    assert suite_cpu.kind(["ray::SingleAgentEnvRunner.apply"]) == "ray::SingleAgentEnvRunner"
    assert suite_cpu.kind([py, "-u", "-c", "import sys;exec(eval(sys.stdin.readline()))"]) == (
        "pytest-xdist worker"
    )
    assert suite_cpu.kind([py, "-m", "pytest", "-q"]) == "pytest"
    driver = [py, "/w/experiments/asg_visda.py", "--data-root", "/tmp/pytest-of-root/ray/x"]
    assert suite_cpu.kind(driver) == "driver asg_visda.py"
    assert suite_cpu.kind([f"{site}/ray/core/src/ray/gcs/gcs_server", "--port=1"]) == (
        "Ray gcs_server"
    )
    assert suite_cpu.kind([py, f"{site}/ray/dashboard/agent.py", "--x"]) == "Ray agent.py"
    assert suite_cpu.kind([py, "tests/monitoring_probe.py", "1"]) == "monitoring_probe.py"

    child_script = tmp_path / "suite_cpu_child.py"  # a name no other process has
    child_script.write_text(
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    )
    with suite_cpu.Sampler(interval=0.05) as sampler:
        subprocess.run([sys.executable, str(child_script)], check=True)
    rows = {name: (cpu, n) for name, cpu, n in sampler.by_kind()}
    cpu, processes = rows["suite_cpu_child.py"]
    assert processes == 1 and 0 < cpu <= 1.0, rows


def test_in_range_rho_reproduces_the_committed_output_and_refuses_too_few_runs():
    """tools/in_range_rho.py: on the committed batch-48 reward study it prints what
    results/reward_candidates_b48/in_range_rho.txt holds; a floor no run passes is one line."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    study = root / "results" / "reward_candidates_b48"
    tool = root / "tools" / "in_range_rho.py"
    out = subprocess.run(
        [sys.executable, tool, study / "reward_candidates.json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == (study / "in_range_rho.txt").read_text()
    refused = subprocess.run(
        [sys.executable, tool, study / "reward_candidates.json", "--floor", "0.99"],
        capture_output=True, text=True,
    )  # fmt: skip
    err = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(err) == 1 and "0 runs above --floor" in err[0]


def test_reused_runs_must_share_the_fine_tuning_config(tmp_path):
    """ablation --reuse takes a finished file's runs of the asked rows and seeds; a file run under
    another config is a one-line error naming the fields, and not a results file one too."""
    from experiments.lib.recorded_runs import reusable_runs
    from trainables.config import preset

    cfg = preset("tiny")
    runs = [run(m, s, 0.5) for m in ("a", "b") for s in (1, 2, 3)]
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"finetune_config": dataclasses.asdict(cfg),
                                "runs": [r.to_dict() for r in runs]}))  # fmt: skip
    got = reusable_runs(str(path), cfg, ["a", "c"], [1, 3, 4])
    assert [(r.method, r.seed) for r in got] == [("a", 1), ("a", 3)]
    with pytest.raises(ConfigError, match=r"another fine-tuning config \(batch_size, windows\)"):
        reusable_runs(str(path), dataclasses.replace(cfg, batch_size=7, windows=9), ["a"], [1])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="--reuse .*bad.json: not a results file with runs"):
        reusable_runs(str(tmp_path / "bad.json"), cfg, ["a"], [1])


def test_a_recorded_config_differs_where_a_field_differs_or_is_missing():
    """config_differences (ablation --reuse, learning_curve --resume): a legacy comma-separated
    csg_stages reads as its list; a field the file lacks differs, even where today's is None."""
    from experiments.lib.recorded_runs import RecordedRuns, config_differences
    from trainables.config import preset

    cfg = dataclasses.replace(preset("tiny"), csg_stages=("layer3", "layer4"))
    written = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert config_differences(RecordedRuns(written, []), cfg) == []
    legacy = {**written, "csg_stages": "layer3,layer4"}
    assert config_differences(RecordedRuns(legacy, []), cfg) == []
    assert written["data_root"] is None
    lacking = {k: v for k, v in written.items() if k != "data_root"}
    assert config_differences(RecordedRuns(lacking, []), cfg) == ["data_root"]
    assert len(config_differences(RecordedRuns(None, []), cfg)) == len(written)
