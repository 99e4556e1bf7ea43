"""One env per process, reused for every run that asks for the same config.

Worker processes (the power study's pool, Tune's reused trial actors) run many seeds of one
config: building the env again for each would render the data, build the model and teacher, and
fit the probe again. `reset` restores the pretrained weights, so a reused env runs the same run
as a fresh one (tests/test_benchmark_levers.py). A different config frees the old env first.
"""

from __future__ import annotations

from typing import Any

from envs.syn_to_real import SynToRealEnv
from trainables.config import FinetuneConfig

_KEPT: dict[str, Any] = {}


def reused_env(cfg: FinetuneConfig, action_encoding: str = "multidiscrete") -> SynToRealEnv:
    """This process's env for (cfg, action_encoding), with wall times in `info`."""
    key = repr((cfg, action_encoding))
    if _KEPT.get("key") != key:
        _KEPT.clear()
        _KEPT["env"] = SynToRealEnv(config=cfg, action_encoding=action_encoding, report_timing=True)
        _KEPT["key"] = key
    return _KEPT["env"]
