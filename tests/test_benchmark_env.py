"""experiments/benchmark_env.py and experiments/benchmarks/: interleaved timing, the script's
flags, and a CPU smoke run of the device part (the code path a GPU run takes, at toy sizes)."""

from __future__ import annotations

import json

import pytest

from experiments.benchmark_env import main, parse
from experiments.benchmarks.timing import Interleaved, interleaved


def recorder(name: str, seconds: list[float], calls: list[str]):
    """A fake measurement that logs its name and returns the next of `seconds`."""
    values = iter(seconds)

    def measure() -> float:
        calls.append(name)
        return next(values)

    return measure


def test_interleaved_alternates_after_a_warm_up_pair_and_excludes_it():
    calls: list[str] = []
    # The warm-up pair (100 s, 1 s) would wreck every statistic if it were counted.
    a = recorder("a", [100.0, 2.0, 4.0, 6.0], calls)
    b = recorder("b", [1.0, 1.0, 1.0, 2.0], calls)
    r = interleaved(a, b, pairs=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert r.ratios == (2.0, 4.0, 3.0)
    assert r.median_ratio == 3.0
    assert (r.ratio_lo, r.ratio_hi) == (2.0, 4.0)
    assert (r.a_median_s, r.b_median_s) == (4.0, 1.0)
    assert r.pairs == 3 and r.a_seconds == (2.0, 4.0, 6.0) and r.b_seconds == (1.0, 1.0, 2.0)


def test_interleaved_median_is_of_per_pair_ratios_not_a_ratio_of_medians():
    r = Interleaved.from_seconds([1.0, 8.0, 3.0], [1.0, 2.0, 3.0])  # ratios 1, 4, 1
    assert r.median_ratio == 1.0  # the ratio of the medians would be 3 / 2
    r = Interleaved.from_seconds([1.0, 8.0, 6.0, 2.0], [1.0, 2.0, 2.0, 1.0])  # 1, 4, 3, 2
    assert r.median_ratio == 2.5 and (r.ratio_lo, r.ratio_hi) == (1.0, 4.0)
    assert r.a_median_s == 4.0 and r.b_median_s == 1.5
    cell = r.cell()
    assert cell.startswith("2.500x") and "1.000-4.000" in cell
    assert r.to_json(a="x")["spread"].startswith("min-max")


def test_interleaved_rejects_no_pairs():
    with pytest.raises(ValueError):
        interleaved(lambda: 1.0, lambda: 1.0, pairs=0)
    with pytest.raises(ValueError):
        Interleaved.from_seconds([1.0], [1.0, 2.0])


def test_parse_defaults_and_one_line_errors(capsys):
    from conftest import main_in_process

    from trainables.errors import ConfigError

    args = parse([])
    d = args.device_part
    assert args.pairs == 5 and args.parts == ("overhead", "proxy", "scaling")
    assert d.models == ("resnet50", "resnet101") and d.gpu_runners == (1, 2, 4)
    assert (d.image_size, d.batch_size, d.device, d.compile) == (224, 32, "auto", False)
    assert parse(["--gpu-runners", ""]).device_part.gpu_runners == ()
    assert (
        parse(["--parts", "overhead,proxy"]).parts == parse(["--parts", "overhead", "proxy"]).parts
    )
    for bad in (
        ["--pairs", "0"],
        ["--parts", "overhead,nope"],
        ["--models", "resnet18"],
        ["--gpu-runners", "1,x"],
        ["--device", "tpu"],
    ):
        with pytest.raises(ConfigError):
            parse(bad)
        code, _, err = main_in_process(capsys, main, *bad)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (bad, err)
    code, _, err = main_in_process(capsys, main, "--pairs", "0")
    assert "--pairs must be >= 1" in err


@pytest.mark.slow
def test_device_part_smoke_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = [
        "--parts", "device", "--device", "cpu", "--models", "resnet50", "--image-size", "32",
        "--batch-size", "4", "--iters", "2", "--pairs", "2", "--tree-images-per-class", "2",
        "--gpu-runners", "", "--output", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["device_name"] == "CPU only" and report["pairs"] == 2
    d = report["device_throughput"]
    assert d["device"] == "CPU only" and d["device_type"] == "cpu"
    (m,) = d["models"]
    assert m["model"] == "resnet50" and m["gpu_runners"] == []
    for key in ("env_vs_plain", "plain_vs_best"):
        r = m[key]
        assert r["pairs"] == 2 and len(r["ratios"]) == 2
        assert r["ratio_lo"] <= r["median_ratio"] <= r["ratio_hi"]
        assert r["a_median_s"] > 0 and r["b_median_s"] > 0 and r["spread"]
    for loop in m["loops"].values():
        assert loop["images_per_measurement"] == 8  # 2 iterations of 4 images
        assert loop["images_per_s"] > 0 and loop["peak_memory_gib"] is None  # n/a on the CPU
    printed = capsys.readouterr().out
    assert "CPU only" in printed and "| resnet50 | env SGD windows |" in printed


def test_run_cost_reads_the_static_studys_typed_runs(monkeypatch):
    """`--parts runcost` over `run_study`'s StaticRun records (a stand-in study, no training)."""
    from controllers import static_study
    from controllers.static_study import StaticRun
    from experiments.benchmarks.runcost import SCHEDULE, run_cost

    def study(variants, schedules, seeds, runs_file, workers):
        assert [v.name for v in variants] == ["tiny"] and schedules == [SCHEDULE]
        assert seeds == [0, 1] and runs_file.name == "runs.jsonl" and workers == 1
        return [
            StaticRun("tiny", SCHEDULE, seed, 0.5, 0.9, 0.7, 0.2, False, run_s, 8.0, build_s, 1)
            for seed, run_s, build_s in [(0, 10.0, 4.0), (1, 12.0, 0.0)]
        ]

    monkeypatch.setattr(static_study, "run_study", study)
    cost = run_cost("tiny", 2)
    assert cost.runs == 2 and cost.build_s == 4.0
    assert cost.run_s == [10.0, 12.0] and cost.sgd_s == [8.0, 8.0]
    assert cost.wall_over_sgd == pytest.approx(26.0 / 16.0)


def test_eval_batch_part_times_each_size_against_the_default_and_compares_scores(capsys, tmp_path):
    """`--parts evalbatch` on the tiny preset: a row per size with its interleaved timing
    against the default size, the default's own row scoring the same as itself, the table and
    the JSON written."""
    from trainables.config import FinetuneConfig

    default = FinetuneConfig().eval_batch_size
    out = tmp_path / "evalbatch.json"
    assert main(["--parts", "evalbatch", "--preset", "tiny", "--pairs", "1",
                 "--eval-batch-sizes", "8", str(default), "--output", str(out)]) == 0  # fmt: skip
    rows = json.loads(out.read_text())["eval_batch"]
    assert [r["batch_size"] for r in rows] == [8, default]
    for r in rows:
        timing = r["vs_default"]
        assert timing["pairs"] == 1 and timing["a_median_s"] > 0 and timing["b_median_s"] > 0
        assert timing["b"] == f"test split at batch {default}"
    assert rows[1]["same_accuracy"] is True and rows[1]["nll_difference"] == 0.0
    assert f"| {default} |" in capsys.readouterr().out
