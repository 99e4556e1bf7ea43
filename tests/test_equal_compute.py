"""Equal-compute baselines: WiSE-FT's end of a run, the search's budget and proxy-only choices,
and experiments/equal_compute.py end to end on the tiny preset."""

from __future__ import annotations

import json
import statistics

import pytest

from controllers.static_study import StaticRun
from experiments.lib import equal_compute as ec
from trainables.config import preset
from trainables.errors import ConfigError

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def plain():
    """A tiny run with the probe head start (WiSE-FT's start: pretrained + probe)."""
    from trainables.finetune import FinetuneRun

    return FinetuneRun(preset("tiny", head_init="probe"))


def _finish(run, multiplier: float, seed: int = 3):
    """(proxy, test) at the start and at the end of a run at one multiplier for every group."""
    run.reset(seed)
    start = (run.evaluate("proxy").mean_class, run.evaluate("test").mean_class)
    for _ in range(run.cfg.windows):
        run.train_window([multiplier] * run.num_groups)
    return start, (run.evaluate("proxy").mean_class, run.evaluate("test").mean_class)


@pytest.fixture(scope="module")
def wise(plain):
    """`wise(alphas)`: one more run of `plain`'s config with --wise-alphas, built once (only
    the option changes between uses, and `reset` reads it)."""
    from trainables.finetune import FinetuneRun

    run = FinetuneRun(plain.cfg.replace(wise_alphas=(1.0,)), splits=plain.splits)

    def with_alphas(alphas):
        run.cfg = plain.cfg.replace(wise_alphas=alphas)
        return run

    return with_alphas


def test_wise_ft_alpha_0_is_the_start_and_alpha_1_the_plain_run(plain, wise):
    start, end = _finish(plain, 0.05)
    assert end != start  # the run moved, so the two ends differ
    assert _finish(wise((0.0,)), 0.05) == (start, start) and wise((0.0,)).wise_alpha == 0.0
    assert _finish(wise((1.0,)), 0.05) == (start, end) and wise((1.0,)).wise_alpha == 1.0


def test_wise_ft_keeps_the_alpha_with_the_best_proxy_ties_to_the_largest(wise):
    """Several alphas: the run ends at the one whose single-alpha run scores best on the proxy
    (never the real split), and records it; a tie goes to the largest alpha."""
    single = {a: _finish(wise((a,)), 0.05)[1] for a in ALPHAS}
    best = max(ALPHAS, key=lambda a: (single[a][0], a))
    assert _finish(wise(ALPHAS), 0.05)[1] == single[best] and wise(ALPHAS).wise_alpha == best
    _finish(wise(ALPHAS), 0.0)  # rate 0: every alpha is the start, all tie
    assert wise(ALPHAS).wise_alpha == 1.0


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"wise_alphas": (1.5,)}, r"\[0, 1\]"),
        ({"wise_alphas": (0.5,), "bn_mode": "train"}, "frozen"),
    ],
)
def test_bad_wise_alphas_are_one_line_config_errors(overrides, why):
    with pytest.raises(ConfigError, match=why):
        preset("tiny", **overrides)
    assert preset("tiny", wise_alphas="0.5,1").wise_alphas == (0.5, 1.0)  # --variant's form


def _run(schedule: str, seed: int, proxy: float, test: float, diverged: bool = False):
    return StaticRun(ec.SEARCH, schedule, seed, test, proxy, 0.1, 0.0, diverged, 1.0, 1.0, 0.0, 1)


def test_the_search_picks_by_proxy_alone_and_spends_the_budget():
    space = ec.Space(("stem", "blocks", "head"), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5))
    plan = ec.plan_budget(24, 2, space)
    assert sum(plan.runs().values()) == 24 and min(plan.runs().values()) >= 2
    runs = [
        *(_run("all:0.1", s, proxy=0.8, test=0.2) for s in (0, 1)),
        *(_run("all:0.5", s, proxy=0.5, test=0.9) for s in (0, 1)),  # best real, worse proxy
        _run("all:0.2", 0, proxy=0.95, test=0.9),
        _run("all:0.2", 1, proxy=0.99, test=0.9, diverged=True),  # scores 0: mean 0.475
    ]
    best, means = ec.winner(["all:0.5", "all:0.1", "all:0.2"], runs)
    assert best == "all:0.1" and means["all:0.2"] == pytest.approx(0.475)
    assert ec.surgical_candidates(space, 1, 0.1) == ["blocks:0.1,head:0.1"]
    draws = ec.random_candidates(space, 5, seed=7)
    assert draws == ec.random_candidates(space, 5, seed=7) and len(set(draws)) == 5


def test_equal_compute_tiny_run_writes_the_table(tmp_path, capsys, untrained_policy):
    from conftest import main_in_process

    from experiments import equal_compute

    policy = untrained_policy()
    args = ["--preset", "tiny", "--budget", "6", "--seeds", "2", "--output-dir", tmp_path]
    code, out, err = main_in_process(capsys, equal_compute.main, *args, "--policy-dir", policy)
    assert code == 0, err
    result = json.loads((tmp_path / "equal_compute.json").read_text())
    names = ["uniform sweep", "random search", "surgical", "WiSE-FT", "learned"]
    assert [r["row"] for r in result["rows"]] == names
    assert all(r["runs"] == 2 for r in result["rows"])
    wise = result["rows"][3]
    assert sum(wise["wise_alphas"].values()) == 2
    assert set(wise["wise_alphas"]) <= {"0.25", "0.5", "0.75", "1"}
    lines = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    search = [x for x in lines if x["variant"] == ec.SEARCH]
    assert len(search) == 6 and {x["seed"] for x in search} == {0, 1}  # exactly the budget
    assert {x["seed"] for x in lines if x["variant"] != ec.SEARCH} == {40000, 40001}
    for name, family in result["families"].items():  # each winner: its best mean proxy
        if family["candidates"]:
            means = {
                c: statistics.fmean(x["proxy_acc"] for x in search if x["schedule"] == c)
                for c in family["candidates"]
            }
            assert means[family["winner"]] == max(means.values()), name
    md = (tmp_path / "equal_compute.md").read_text()
    assert "budget 6" in md and ("BEATS" in md or "does NOT beat" in md)
    # The search never read real accuracy: other real accuracies for its runs, same winners.
    (tmp_path / "runs.jsonl").write_text(
        "".join(
            json.dumps(x | {"test_acc": 1.0 - x["test_acc"]} if x in search else x) + "\n"
            for x in lines
        )  # fmt: skip
    )
    code, _, err = main_in_process(capsys, equal_compute.main, *args, "--policy-dir", policy)
    again = json.loads((tmp_path / "equal_compute.json").read_text())
    assert code == 0 and again["families"] == result["families"], err


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--budget", "5"], "--budget 5 is not a multiple"),
        (["--budget", "4"], "at least 3"),
        (["--low", "0.3", "--high", "0.1"], "--low"),
        (["--wise-alphas", "0.5"], "--wise-ft-alphas"),
        (["--wise-ft-alphas", "2"], "--wise-alphas must be in"),
        (["--seeds", "1"], "--seeds"),
        (["--policy-dir", "/no/such/policy"], "--policy-checkpoint /no/such/policy"),
    ],
)
def test_equal_compute_bad_flags_are_one_line(tmp_path, capsys, args, flag):
    from conftest import main_in_process

    from experiments import equal_compute

    argv = ["--preset", "tiny", "--output-dir", tmp_path / "out", *args]
    code, out, err = main_in_process(capsys, equal_compute.main, *argv)
    assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
