"""Rollout metrics for a cluster's monitoring: what the fine-tuning windows do, as Prometheus
series that every Ray node's metrics endpoint serves (and Ray's dashboard charts, through the
Prometheus and Grafana it embeds; see docs/monitoring.md).

Every series is tagged with `phase` ('meta_training' in RLlib's env runners, 'evaluation' in
Tune's trial actors) and `method` (the controller's name; 'meta_training' while it learns).
Ray prefixes the names with `ray_`:

- `asg_windows_total`, `asg_runs_total` (counters): fine-tuning windows and whole runs done;
- `asg_multiplier` (gauge, also tagged `group`): the multiplier each layer group last ran at;
- `asg_proxy_acc` (gauge): the proxy-validation accuracy after the last window;
- `asg_window_seconds` (gauge): the last window's SGD time;
- `asg_gpu_memory_mib` (gauge): peak GPU memory of the process, where there is a GPU.

Nothing is recorded outside a Ray worker or driver (a plain script, a unit test without Ray).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

PHASES = ("meta_training", "evaluation")
TAGS = ("phase", "method")


@functools.cache
def _series():
    from ray.util.metrics import Counter, Gauge

    return {
        "windows": Counter("asg_windows_total", "Fine-tuning windows done.", tag_keys=TAGS),
        "runs": Counter("asg_runs_total", "Fine-tuning runs done.", tag_keys=TAGS),
        "multiplier": Gauge(
            "asg_multiplier",
            "Learning-rate multiplier a layer group last ran at.",
            tag_keys=(*TAGS, "group"),
        ),
        "proxy_acc": Gauge("asg_proxy_acc", "Proxy accuracy after a window.", tag_keys=TAGS),
        "window_seconds": Gauge("asg_window_seconds", "SGD seconds of a window.", tag_keys=TAGS),
        "gpu_memory": Gauge("asg_gpu_memory_mib", "Peak GPU memory (MiB).", tag_keys=TAGS),
    }


def _in_ray() -> bool:
    import ray

    return ray.is_initialized()


def record_run(phase: str, method: str) -> None:
    """Count one finished fine-tuning run."""
    if _in_ray():
        _series()["runs"].inc(1.0, tags={"phase": phase, "method": method})


def record_window(phase: str, method: str, info: Mapping) -> None:
    """Record one finished window from the env's step `info` (its `multipliers`, `proxy_acc`
    and `window_seconds`)."""
    if not _in_ray():
        return
    s, tags = _series(), {"phase": phase, "method": method}
    s["windows"].inc(1.0, tags=tags)
    for group, m in info.get("multipliers", {}).items():
        s["multiplier"].set(float(m), tags={**tags, "group": group})
    for key, name in (("proxy_acc", "proxy_acc"), ("window_seconds", "window_seconds")):
        value = info.get(key)
        if value is not None and math.isfinite(value):
            s[name].set(float(value), tags=tags)
    import torch

    if torch.cuda.is_available():
        s["gpu_memory"].set(torch.cuda.max_memory_allocated() / 2**20, tags=tags)
