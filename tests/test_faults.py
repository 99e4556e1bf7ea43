"""Reliability of meta-training inside one run: a dead env runner is replaced, and a corrupt
image that only an env runner reads stops it in one line. (Ctrl-C and killed drivers are in
test_pipeline.py, on its shared run.)"""

import subprocess
from pathlib import Path

import pytest
from conftest import tiny_pipeline
from doubles import crashing_standin_env

from controllers.algorithms import Resources, build_algo_config

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_env_runner_crash_is_restarted_and_iteration_completes(tmp_path, local_ray):
    """An env runner process that dies mid-episode is restarted (RLlib fault tolerance) and the
    training iteration still completes with sampled episodes."""
    marker = tmp_path / "crashed"
    # On the stand-in env with the real env's spaces: RLlib's restart does not depend on what
    # the env computes, and the stand-in's episodes cost nothing.
    env_config = {"num_groups": 5, "windows": 3, "crash_once_file": str(marker)}
    config = build_algo_config(
        "PPO",
        env_config,
        windows_per_episode=3,
        resources=Resources(num_env_runners=2),
        episodes_per_iteration=2,
        env_creator=crashing_standin_env,
    )
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
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
        "--no-dashboard", "--output-dir", tmp_path / "out",
    )  # fmt: skip
    # The timeout bounds it: without the fix, RLlib restarts the runner for 10+ minutes.
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=private_ray
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {bad}: cannot read image"), last
    assert "meta-training stopped" in last


def test_a_file_cut_short_in_storage_leaves_the_previous_version(tmp_path):
    """Tune writes its state into --output-dir through `storage_filesystem()`: a write that
    never finishes (the driver killed mid-copy) leaves the old file whole and no truncated one;
    a finished copy lands byte for byte; the filesystem survives pickling (Tune ships it to
    its trial actors)."""
    import pickle

    import pyarrow.fs

    from controllers.atomic_storage import PART_SUFFIX, _ReplaceOnClose, storage_filesystem

    fs = pickle.loads(pickle.dumps(storage_filesystem()))
    source = tmp_path / "staging"
    (source / "trial").mkdir(parents=True)
    (source / "tuner.pkl").write_bytes(b"new state " * 1000)
    (source / "trial" / "result.json").write_text('{"training_iteration": 2}\n')
    target = tmp_path / "storage"
    pyarrow.fs.copy_files(str(source), str(target), destination_filesystem=fs)
    assert (target / "tuner.pkl").read_bytes() == b"new state " * 1000
    assert (target / "trial" / "result.json").read_text() == '{"training_iteration": 2}\n'

    stream = fs.open_output_stream(str(target / "tuner.pkl"))
    stream.write(b"half of a newer st")  # ... and the process dies here
    assert (target / "tuner.pkl").read_bytes() == b"new state " * 1000
    assert [p.name for p in target.glob(f".tuner.pkl.*{PART_SUFFIX}")]  # Tune reads no such name
    stream.close()
    assert (target / "tuner.pkl").read_bytes() == b"half of a newer st"
    assert not list(target.glob(f".*{PART_SUFFIX}"))

    failing = _ReplaceOnClose(str(target / "tuner.pkl"))  # a write that fails (a full disk)
    failing.write(b"the start of a file")
    with pytest.raises(TypeError):
        failing.write("not bytes")
    failing.close()
    assert (target / "tuner.pkl").read_bytes() == b"half of a newer st"
    assert not list(target.glob(f".*{PART_SUFFIX}"))
