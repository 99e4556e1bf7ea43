"""Reliability of meta-training inside one run: a dead env runner is replaced, and a corrupt
image that only an env runner reads stops it in one line. (Ctrl-C and killed drivers are in
test_pipeline.py, on its shared run.)"""

import subprocess
from pathlib import Path

import pytest
import ray
from conftest import tiny_pipeline

from controllers.algorithms import Resources, build_algo_config

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_env_runner_crash_is_restarted_and_iteration_completes(tmp_path):
    """An env runner process that dies mid-episode is restarted (RLlib fault tolerance) and the
    training iteration still completes with sampled episodes."""
    marker = tmp_path / "crashed"
    # On the stand-in env with the real env's spaces: RLlib's restart does not depend on what
    # the env computes, and the stand-in's episodes cost nothing.
    env_config = {"standin": True, "num_groups": 5, "windows": 3, "crash_once_file": str(marker)}
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        config = build_algo_config(
            "PPO",
            env_config,
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
