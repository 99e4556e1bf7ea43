"""RLlib callback: the fine-tuning signals a user watches, as custom metrics.

They land under `env_runners/asg/...` in every training result, so Tune's progress table and
TensorBoard show them; every window is also recorded as a Prometheus series on the env
runner's node (`controllers.ray_metrics`), which a cluster's monitoring and the dashboard's
metrics page read.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback

from controllers.ray_metrics import record_run, record_window


class ASGMetricsCallback(RLlibCallback):
    def on_episode_step(self, *, episode, **kwargs) -> None:
        infos = episode.get_infos()
        if infos and "multipliers" in infos[-1]:
            record_window("meta_training", "meta_training", infos[-1])

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        infos = [i for i in episode.get_infos() if "multipliers" in i]
        if not infos:
            return
        last = infos[-1]
        record_run("meta_training", "meta_training")

        def log(key: str, value: float, reduce: str = "mean") -> None:
            if value is not None and math.isfinite(value):
                metrics_logger.log_value(f"asg/{key}", float(value), reduce=reduce, window=20)

        log("proxy_acc", last.get("proxy_acc"))
        log("proxy_gain", last.get("proxy_gain"))
        log("test_acc", last.get("test_acc"))
        log("diverged", float(last.get("diverged", False)))
        log("window_seconds", np.mean([i.get("window_seconds", math.nan) for i in infos]))
        for group in last["multipliers"]:
            log(f"multiplier/{group}", np.mean([i["multipliers"][group] for i in infos]))
        # Episodes per cluster node: shows where the env runners ran (a many-node run).
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()[:12]
            metrics_logger.log_value(f"asg/episodes_on_node/{node}", 1, reduce="sum")
        if torch.cuda.is_available():
            log("peak_gpu_mem_mib", torch.cuda.max_memory_allocated() / 2**20, reduce="max")
