"""The pipeline on a real two-node Ray cluster, started here with `ray start`.

A head and a second worker node run as separate processes on this machine, each with its own
logical CPUs, in a private temp folder. The tiny pipeline joins them with `--address`, on a
VisDA-layout tree with 10 classes (not VisDA's 12), spreads 8 env runners over both nodes, and
writes results, checkpoints and a resumable state into one shared `--output-dir`; a new run
deploys the policy it exported; asked for more env runners than the cluster has CPUs, it
refuses in one line. Only the processes of this cluster are stopped afterwards, by process id.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import kill_processes_mentioning, many_ray_processes, tiny_pipeline

ROOT = Path(__file__).resolve().parent.parent
# The first test may wait for the shared pipeline run to end (`many_ray_processes`).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    folder = tempfile.mkdtemp(prefix="asgray", dir="/tmp")
    port = _free_port()
    env = {**os.environ, "RAY_TMPDIR": folder, "RAY_AUTH_MODE": "token", "RAY_ADDRESS": ""}
    head = ["ray", "start", "--head", "--port", str(port), "--temp-dir", folder]
    worker = ["ray", "start", "--address", f"127.0.0.1:{port}"]
    with many_ray_processes(tmp_path_factory):
        try:
            for cmd in (head, worker):
                cmd += ["--num-cpus", "5"]
                cmd += [] if cmd is worker else ["--include-dashboard", "false"]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
                assert proc.returncode == 0, proc.stderr[-2000:]
            yield f"127.0.0.1:{port}", env
        finally:
            kill_processes_mentioning(folder, f":{port}")
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_run(two_node_cluster, tmp_path_factory):
    """The tiny pipeline on the cluster: (its command line, its process, its --output-dir)."""
    from trainables.data.image_list import make_image_tree

    address, env = two_node_cluster
    tree = make_image_tree(
        tmp_path_factory.mktemp("ten_classes"), n_per_class=4, size=16, num_classes=10
    )
    out = tmp_path_factory.mktemp("shared")
    cmd = tiny_pipeline(
        "--dataset", "visda", "--data-root", str(tree), "--fewshot-per-class", "1",
        "--address", address, "--num-env-runners", "8", "--meta-episodes", "8",
        "--seeds", "1", "--baselines", "", "--output-dir", out,
    )  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    return cmd, proc, out


def test_pipeline_spreads_env_runners_over_two_nodes(cluster_run):
    _, proc, out = cluster_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "10 CPUs" in proc.stdout  # both nodes' CPUs were seen
    assert "raised from 2 to 8" in proc.stdout  # the batch gave way to the 8 runners

    results = [
        json.loads(line)
        for f in (out / "tune" / "meta_train").glob("*/result.json")
        for line in f.read_text().splitlines()
    ]
    nodes = {
        key.rsplit("/", 1)[1]
        for r in results
        for key in _flat(r.get("env_runners", {}))
        if "episodes_on_node/" in key
    }
    assert len(nodes) == 2, nodes  # env runners sampled episodes on both nodes
    assert sorted((out / "tune" / "meta_train").glob("*/checkpoint_*"))
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] and len(summary["runs"]) == 1  # the learned policy, 1 seed
    assert summary["finetune_config"]["num_classes"] == 0  # taken from the 10-class labels


def test_pipeline_on_the_cluster_resumes_from_its_shared_output_dir(two_node_cluster, cluster_run):
    cmd, proc, _ = cluster_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, env = two_node_cluster
    again = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming meta_train" in again.stdout and "resuming evaluate" in again.stdout


def test_deploy_saved_policy_skips_meta_training(two_node_cluster, cluster_run, tmp_path):
    """The policy the pipeline exported (what results.json names), deployed by a new run."""
    cmd, proc, out = cluster_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, env = two_node_cluster
    checkpoint = json.loads((out / "results.json").read_text())["policy_checkpoint"]
    cmd = [*cmd[: cmd.index("--seeds")], "--policy-checkpoint", checkpoint, "--seeds", "1"]
    deploy = subprocess.run(
        [*cmd, "--baselines", "", "--output-dir", tmp_path],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    assert "meta-train iter" not in deploy.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in results["table"]] == ["learned (saved policy)"]


def _flat(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys += _flat(v, f"{prefix}{k}/") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def test_too_many_env_runners_for_the_cluster_is_refused(two_node_cluster, tmp_path):
    """Say so instead of waiting forever for resources that will never come."""
    address, env = two_node_cluster
    cmd = tiny_pipeline("--address", address, "--num-env-runners", "16", "--output-dir", tmp_path)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "--num-env-runners 16" in last and "the cluster has 10 CPUs" in last, last
