"""Rollout metrics reach a Ray node's Prometheus endpoint while runs go: meta-training windows
from RLlib's env runner, evaluation windows and runs from Tune's trial actors, each tagged
with its phase and method (controllers/ray_metrics.py)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rollout_metrics_are_served_by_the_nodes_metrics_endpoint(private_ray):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "monitoring_probe.py"), str(free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=private_ray,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    series = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    names = {s["name"] for s in series}
    assert {"ray_asg_windows_total", "ray_asg_runs_total", "ray_asg_multiplier"} <= names
    assert {"ray_asg_proxy_acc", "ray_asg_window_seconds"} <= names

    def value(name: str, **labels: str) -> float:
        hits = [s for s in series if s["name"] == name and labels.items() <= s["labels"].items()]
        return sum(s["value"] for s in hits)

    assert value("ray_asg_windows_total", phase="meta_training", method="meta_training") >= 1
    assert value("ray_asg_windows_total", phase="evaluation", method="hand_tuned") >= 1
    assert value("ray_asg_multiplier", phase="evaluation", method="hand_tuned", group="head") == 1.0
    proxy = value("ray_asg_proxy_acc", phase="evaluation", method="hand_tuned")
    assert 0.0 <= proxy <= 1.0
