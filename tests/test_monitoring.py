"""Rollout metrics reach a Ray node's Prometheus endpoint while runs go: meta-training windows
from RLlib's env runner, evaluation windows and runs from Tune's trial actors, each tagged
with its phase and method (controllers/ray_metrics.py)."""

import json
import shutil
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


def probe(env: dict[str, str], *ports: int) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "monitoring_probe.py"), *map(str, ports)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """One probe run for the module: with a real Prometheus beside it where one is installed
    (then Ray's dashboard runs too: it writes the service-discovery file), without elsewhere."""
    from conftest import private_ray_env

    ports = [free_port()] + ([free_port()] if shutil.which("prometheus") else [])
    with private_ray_env() as env:
        return probe(env, *ports)


def test_rollout_metrics_are_served_by_the_nodes_metrics_endpoint(scraped):
    series = [s for s in scraped if "name" in s]
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


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_prometheus_finds_the_rollout_metrics_through_rays_service_discovery(scraped):
    """A real Prometheus, pointed at the service-discovery file Ray's dashboard writes (as
    docs/monitoring.md says), scrapes the node and answers a query for the windows done."""
    answer = next(s["prometheus"] for s in scraped if "prometheus" in s)
    phases = {r["metric"].get("phase") for r in answer}
    assert {"meta_training", "evaluation"} <= phases, answer
    assert all(float(r["value"][1]) >= 1 for r in answer)
