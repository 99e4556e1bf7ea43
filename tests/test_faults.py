"""Reliability: a dead env runner is replaced, a killed driver resumes, divergence is contained."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from conftest import kill_processes_mentioning

from controllers.algorithms import Resources, build_algo_config

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def tiny_pipeline(*flags: str | Path) -> list[str]:
    """The command line of the pipeline on the tiny preset with `flags` added."""
    script = ROOT / "experiments" / "asg_visda.py"
    return [sys.executable, str(script), "--preset", "tiny", *map(str, flags)]


def test_env_runner_crash_is_restarted_and_iteration_completes(tmp_path):
    """An env runner process that dies mid-episode is restarted (RLlib fault tolerance) and the
    training iteration still completes with sampled episodes."""
    marker = tmp_path / "crashed"
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        config = build_algo_config(
            "PPO",
            {"preset": "tiny", "crash_once_file": str(marker)},
            windows_per_episode=3,
            resources=Resources(num_env_runners=2),
            episodes_per_iteration=2,
        )
        algo = config.build_algo()
        results = [algo.train() for _ in range(2)]
        algo.stop()
    finally:
        ray.shutdown()
    assert marker.exists(), "the injected crash never happened"
    assert results[-1]["env_runners"]["num_episodes_lifetime"] >= 2
    assert results[-1]["training_iteration"] == 2


def test_killed_driver_resumes_without_losing_work(tmp_path, private_ray):
    """SIGKILL the pipeline during meta-training; --resume continues from the last checkpoint."""
    cmd = tiny_pipeline(
        "--meta-episodes", "8", "--seeds", "1", "--baselines", "",
        "--num-env-runners", "1", "--output-dir", tmp_path,
    )  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=private_ray,
        start_new_session=True,
    )
    seen = []
    deadline = time.time() + 300
    for line in proc.stdout:
        seen.append(line)
        if "meta-train iter 2:" in line or time.time() > deadline:
            break
    # Kill while the next iteration samples, not while Tune writes iteration 2's checkpoint:
    # a kill inside that write (more likely on a loaded machine) is a different failure.
    meta = tmp_path / "tune" / "meta_train"
    while not list(meta.glob("*/checkpoint_000001")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    assert any("meta-train iter 2:" in s for s in seen), "".join(seen[-30:])
    kill_processes_mentioning(private_ray["RAY_TMPDIR"])  # its orphans, and nobody else's

    saved = sorted(meta.glob("*/checkpoint_*"))
    assert saved, "no checkpoint was persisted before the kill"

    again = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, cwd=ROOT, timeout=600, env=private_ray
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming meta_train" in again.stdout
    lines = next(meta.glob("*/result.json")).read_text().splitlines()
    results = [json.loads(line) for line in lines]
    # Training continued from the persisted checkpoint rather than from scratch: a resumed
    # iteration counts past its restore point, and the episode count carried over.
    restored = [r for r in results if r["training_iteration"] > r["iterations_since_restore"]]
    assert restored, "the trial restarted from scratch"
    first = restored[0]["env_runners"]
    assert first["num_episodes_lifetime"] > first["num_episodes"]
    assert max(r["env_runners"]["num_episodes_lifetime"] for r in results) >= 8
    assert json.loads((tmp_path / "results.json").read_text())["runs"]


def test_ctrl_c_stops_cleanly_with_checkpoint_and_hint(tmp_path, private_ray):
    """SIGINT during meta-training: Tune stops the trial, its checkpoint stays on disk, the
    results so far say where things stand, and the script exits 130 saying how to resume
    (instead of evaluating a half-trained policy)."""
    cmd = tiny_pipeline(
        "--meta-episodes", "200", "--num-env-runners", "1", "--output-dir", tmp_path
    )  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=private_ray
    )
    for line in proc.stdout:
        if "meta-train iter 2:" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err.strip().splitlines()[-1]
    assert sorted((tmp_path / "tune" / "meta_train").glob("*/checkpoint_*"))
    results = json.loads((tmp_path / "results.json").read_text())  # the results so far
    assert results["complete"] is False and "runs" not in results  # nothing half-trained scored
    assert "meta-training" in results["stopped"]
    assert "--resume" in (tmp_path / "results.md").read_text()


def test_input_error_in_an_env_runner_stops_meta_training_in_one_line(tmp_path, private_ray):
    """A corrupt image that only an env runner reads (up-front verification turned off) stops
    meta-training with the file named, instead of restarting the runner forever."""
    from trainables.data.image_list import make_image_tree

    tree = make_image_tree(tmp_path / "visda", n_per_class=3, size=16)
    bad = tree / "train" / "knife" / "0001.png"
    bad.write_bytes(b"not a png" * 9)
    cmd = tiny_pipeline(
        "--dataset", "visda", "--data-root", tree, "--fewshot-per-class", "1",
        "--verify-images", "0", "--meta-episodes", "4", "--num-env-runners", "1",
        "--output-dir", tmp_path / "out",
    )  # fmt: skip
    # The timeout bounds it: without the fix, RLlib restarts the runner for 10+ minutes.
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=private_ray
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {bad}: cannot read image"), last
    assert "meta-training stopped" in last


def test_killed_driver_during_evaluation_keeps_finished_runs(
    tmp_path, untrained_policy, private_ray
):
    """SIGKILL while evaluation trials run; --resume finishes the rest without rerunning the
    trials that had finished (their results are not touched again)."""
    out = tmp_path / "out"
    cmd = tiny_pipeline(
        "--policy-checkpoint", untrained_policy(), "--seeds", "1", "--baselines", "hand_tuned",
        "--num-env-runners", "1", "--output-dir", out,
    )  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        start_new_session=True, env=private_ray,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "(done)" in line:  # one trial finished; the next one is starting
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kill_processes_mentioning(private_ray["RAY_TMPDIR"])
    assert any("(done)" in s for s in seen), "".join(seen[-30:])

    from controllers.tune_trainable import load_run_state

    def finished_trials() -> dict[str, str]:
        """Trial folder -> its last checkpoint, for trials whose last checkpoint is a finished
        run (the checkpoint reaches storage with the result; result.json may lag behind)."""
        trials = {}
        for trial in (out / "tune" / "evaluate").glob("controller_trainable_*"):
            checkpoints = sorted(trial.glob("checkpoint_*"))
            if checkpoints and load_run_state(checkpoints[-1])["env"] is None:
                trials[trial.name] = checkpoints[-1].name
        return trials

    before = finished_trials()
    assert before, "no finished trial reached storage before the kill"
    again = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, cwd=ROOT, env=private_ray
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming evaluate" in again.stdout
    after = finished_trials()
    assert {name: after.get(name) for name in before} == before  # not trained again
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2
