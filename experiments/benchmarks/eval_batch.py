"""Evaluation batch size: scoring the real test split at each batch size against the default
one, interleaved, on a model one window into its run, with one torch thread (as a run's worker
has); and whether the scores are the same."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.benchmarks.loops import LR_ACTION
from experiments.benchmarks.timing import Interleaved, interleaved, timed_call
from trainables.config import FinetuneConfig


@dataclass(frozen=True)
class EvalBatchRow:
    batch_size: int
    vs_default: Interleaved
    """Per pair: seconds to score the test split at this size / at the default size."""
    same_accuracy: bool
    """Every class's accuracy equal to the default size's (so mean-class and overall too)."""
    nll_difference: float
    """|NLL at this size - NLL at the default size| (nats; 0.0: the same to the last bit)."""

    def to_json(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "same_accuracy": self.same_accuracy,
            "nll_difference": self.nll_difference,
            "vs_default": self.vs_default.to_json(
                a=f"test split at batch {self.batch_size}",
                b=f"test split at batch {default_size()}",
                ratio="A seconds / B seconds",
            ),
        }


def default_size() -> int:
    return FinetuneConfig().eval_batch_size


def eval_batch_cost(
    preset_name: str, sizes: list[int], pairs: int, seed: int = 0
) -> list[EvalBatchRow]:
    """One env per batch size, each reset with `seed` and trained one window (CPU runs are
    deterministic, so every env holds the same weights); then the test split scored at each size
    (A) against the default size (B), interleaved, with one torch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _rows(preset_name, sizes, pairs, seed)
    finally:
        torch.set_num_threads(threads)


def _rows(preset_name: str, sizes: list[int], pairs: int, seed: int) -> list[EvalBatchRow]:
    from envs.syn_to_real import SynToRealEnv

    def trained(size: int) -> SynToRealEnv:
        env = SynToRealEnv(preset=preset_name, eval_batch_size=size, report_test=False)
        env.reset(seed=seed)
        env.step(np.full(len(env.group_names), LR_ACTION, dtype=np.int64))
        return env

    reference = trained(default_size())
    reference_scores = reference.run.evaluate("test")

    def score_reference() -> float:
        return timed_call(lambda: reference.run.evaluate("test"))[1]

    rows = []
    for size in sizes:
        env = reference if size == default_size() else trained(size)

        def score(env=env) -> float:
            return timed_call(lambda: env.run.evaluate("test"))[1]

        a, b = env.run.evaluate("test"), reference_scores
        timing = interleaved(score, score_reference, pairs)
        rows.append(EvalBatchRow(size, timing, a.per_class == b.per_class, abs(a.nll - b.nll)))
    return rows
