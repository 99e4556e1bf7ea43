"""Proxy-validation cost: one proxy-validation pass against one env step (which includes one),
interleaved, for each proxy split size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.benchmarks.loops import LR_ACTION
from experiments.benchmarks.timing import Interleaved, interleaved, timed_call


@dataclass(frozen=True)
class ProxyRow:
    proxy_size: int
    share_of_step: Interleaved
    """Per pair: proxy-validation seconds / seconds of one env step (which includes one)."""

    def to_json(self) -> dict:
        return {
            "proxy_size": self.proxy_size,
            "share_of_step": self.share_of_step.to_json(
                a="proxy-validation pass", b="env step", ratio="A seconds / B seconds"
            ),
        }


def proxy_cost(preset_name: str, sizes: list[int], pairs: int, seed: int = 0) -> list[ProxyRow]:
    """A proxy-validation pass (A) against one env step (B), interleaved, per proxy size."""
    from envs.syn_to_real import SynToRealEnv

    rows = []
    for size in sizes:
        env = SynToRealEnv(
            preset=preset_name, proxy_size=size, report_timing=True, report_test=False
        )
        action = np.full(len(env.group_names), LR_ACTION, dtype=np.int64)
        state = {"done": True}

        def step(env=env, action=action, state=state) -> float:
            if state["done"]:
                env.reset(seed=seed)  # not timed
            (_, _, term, trunc, _), seconds = timed_call(lambda: env.step(action))
            state["done"] = term or trunc
            return seconds

        def proxy_eval(env=env) -> float:
            return timed_call(lambda: env.run.evaluate("proxy"))[1]

        rows.append(ProxyRow(size, interleaved(proxy_eval, step, pairs)))
    return rows
