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
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import kill_processes_mentioning, many_ray_processes, ray_folder_env, tiny_pipeline

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
    env = {**os.environ, **ray_folder_env(folder), "RAY_AUTH_MODE": "token", "RAY_ADDRESS": ""}
    head = ["ray", "start", "--head", "--port", str(port), "--temp-dir", folder]
    worker = ["ray", "start", "--address", f"127.0.0.1:{port}"]
    try:
        for cmd in (head, worker):
            cmd += ["--num-cpus", "5"]
            cmd += [] if cmd is worker else ["--include-dashboard", "false"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
            assert proc.returncode == 0, proc.stderr[-2000:]
        # Two idle nodes are light; what runs on them waits for the shared pipeline run.
        with many_ray_processes(tmp_path_factory):
            yield f"127.0.0.1:{port}", env
    finally:
        kill_processes_mentioning(folder, f":{port}")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Finished:
    """What one process of this module printed and how it ended."""

    stdout: str
    stderr: str
    returncode: int


def _start(cmd: list, env: dict[str, str], stdout: Path) -> subprocess.Popen:
    """Start `cmd` with its output in files (pipes of processes run side by side could fill)."""
    stdout.parent.mkdir(parents=True, exist_ok=True)
    with stdout.open("w") as out, stdout.with_suffix(".err").open("w") as err:
        return subprocess.Popen(
            [str(c) for c in cmd], stdout=out, stderr=err, text=True, cwd=ROOT, env=env
        )


def _finish(proc: subprocess.Popen, stdout: Path, timeout: float) -> Finished:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return Finished(stdout.read_text(), stdout.with_suffix(".err").read_text(), proc.returncode)


def _line_with(text: str, proc: subprocess.Popen, stdout: Path, timeout: float) -> str | None:
    """The first line of `proc`'s output that contains `text`, once printed; None if `proc`
    ends (or `timeout` passes) first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ended = proc.poll() is not None
        line = next((ln for ln in stdout.read_text().splitlines() if text in ln), None)
        if line is not None or ended:
            return line
        time.sleep(0.5)
    return None


@dataclass
class ClusterRuns:
    """The processes run on the cluster. Each is mostly one process's start-up, so they run
    side by side where nothing orders them: the refused run beside the tiny pipeline, a new run
    that deploys the pipeline's exported policy beside its evaluation, the pipeline's
    `--resume` once it has ended."""

    cmd: list  # the tiny pipeline's command line
    out: Path  # its --output-dir
    pipeline: Finished
    too_many: Finished  # asked for 16 env runners
    resumed: Finished | None = None  # the pipeline's command line with --resume
    deployed: Finished | None = None  # a new run with --policy-checkpoint
    deployed_out: Path | None = None
    deployed_policy: str = ""  # the policy folder the pipeline printed when it saved it


@pytest.fixture(scope="module")
def cluster_runs(two_node_cluster, tmp_path_factory) -> ClusterRuns:
    from trainables.data.image_list import make_image_tree

    address, env = two_node_cluster
    tree = make_image_tree(
        tmp_path_factory.mktemp("ten_classes"), n_per_class=4, size=16, num_classes=10
    )
    out, logs = tmp_path_factory.mktemp("shared"), tmp_path_factory.mktemp("logs")
    cmd = tiny_pipeline(
        "--dataset", "visda", "--data-root", str(tree), "--fewshot-per-class", "1",
        "--address", address, "--num-env-runners", "8", "--meta-episodes", "8",
        "--seeds", "1", "--baselines", "", "--output-dir", out,
    )  # fmt: skip
    # The refusal only reads the cluster's total CPUs, so the pipeline's workers do not change it.
    too_many_cmd = tiny_pipeline(
        "--address", address, "--num-env-runners", "16",
        "--output-dir", tmp_path_factory.mktemp("too_many"),
    )  # fmt: skip
    too_many = _start(too_many_cmd, env, logs / "too_many" / "out")
    pipeline = _start(cmd, env, logs / "pipeline" / "out")
    # The deploy starts once the policy is exported, beside the pipeline's evaluation of it,
    # from a copy: the resume below exports it again into the same folder.
    saved = _line_with("policy saved to", pipeline, logs / "pipeline" / "out", timeout=900)
    deploy = None
    if saved is not None:
        exported = saved.split("policy saved to ", 1)[1].split(" (deploy with")[0]
        policy = tmp_path_factory.mktemp("deploy") / "policy"
        shutil.copytree(exported, policy)
        deploy_cmd = [
            *cmd[: cmd.index("--seeds")], "--policy-checkpoint", policy, "--seeds", "1",
            "--baselines", "", "--output-dir", policy.parent / "out",
        ]  # fmt: skip
        deploy = _start(deploy_cmd, env, logs / "deploy" / "out")
    runs = ClusterRuns(
        cmd,
        out,
        pipeline=_finish(pipeline, logs / "pipeline" / "out", timeout=900),
        too_many=_finish(too_many, logs / "too_many" / "out", timeout=300),
    )
    resume = None
    if runs.pipeline.returncode == 0:  # otherwise the first test says why
        resume = _start([*cmd, "--resume"], env, logs / "resume" / "out")
    if deploy is not None:
        runs.deployed_policy, runs.deployed_out = exported, policy.parent / "out"
        runs.deployed = _finish(deploy, logs / "deploy" / "out", timeout=600)
    if resume is not None:
        runs.resumed = _finish(resume, logs / "resume" / "out", timeout=900)
    return runs


def test_pipeline_spreads_env_runners_over_two_nodes(cluster_runs):
    run, out = cluster_runs.pipeline, cluster_runs.out
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "10 CPUs" in run.stdout  # both nodes' CPUs were seen
    assert "raised from 2 to 8" in run.stdout  # the batch gave way to the 8 runners

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


def test_pipeline_on_the_cluster_resumes_from_its_shared_output_dir(cluster_runs):
    assert cluster_runs.pipeline.returncode == 0, cluster_runs.pipeline.stderr[-2000:]
    again = cluster_runs.resumed
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming meta_train" in again.stdout and "resuming evaluate" in again.stdout


def test_deploy_saved_policy_skips_meta_training(cluster_runs):
    """The policy the pipeline exported (what results.json names), deployed by a new run."""
    assert cluster_runs.pipeline.returncode == 0, cluster_runs.pipeline.stderr[-2000:]
    exported = json.loads((cluster_runs.out / "results.json").read_text())["policy_checkpoint"]
    assert cluster_runs.deployed_policy == exported  # a copy of it, taken when it was saved
    deploy = cluster_runs.deployed
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    assert "meta-train iter" not in deploy.stdout
    results = json.loads((cluster_runs.deployed_out / "results.json").read_text())
    assert [r["method"] for r in results["table"]] == ["learned (saved policy)"]


def _flat(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys += _flat(v, f"{prefix}{k}/") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def test_too_many_env_runners_for_the_cluster_is_refused(cluster_runs):
    """Say so instead of waiting forever for resources that will never come."""
    run = cluster_runs.too_many
    assert run.returncode == 2, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert "--num-env-runners 16" in last and "the cluster has 10 CPUs" in last, last
