"""Env overhead: env-driven episodes (CPU, a small preset) against a plain PyTorch loop over the
same SGD iterations, interleaved, each episode split into SGD windows, proxy-validation and the
rest; then one directly stepped 1-thread episode and one RLlib-sampled episode."""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from experiments.benchmarks.loops import LR_ACTION, PlainLoop
from experiments.benchmarks.ray_session import private_ray
from experiments.benchmarks.timing import (
    WARMUP_PAIRS,
    Interleaved,
    Timed,
    interleaved,
    timed_call,
)


@dataclass(frozen=True)
class EpisodeParts:
    """Wall seconds of one env episode (its steps, not the reset), split into its parts."""

    total_s: float
    train_s: float
    """Wall time of the SGD windows (each window's own `WindowStats.seconds`)."""
    teacher_forward_s: float
    """Part of `train_s` in the frozen teacher's forward pass (as the env reports it)."""
    evaluation_s: float
    """Proxy-validation after each window: the env does not time its own pass, so this is the
    same pass (same split, same weights) timed again right after each step."""
    observation_and_step_s: float
    """Everything else: observation, reward, env bookkeeping."""


def env_episode(env, seed: int) -> EpisodeParts:
    """One env-driven episode at multiplier 0.1 everywhere, split into its parts. The env must
    report its timing (`report_timing=True`)."""
    env.reset(seed=seed)  # not timed: restores weights, trains the head, first proxy pass
    action = np.full(len(env.group_names), LR_ACTION, dtype=np.int64)
    total = train = teacher = evaluation = 0.0
    done = False
    while not done:
        (_, _, term, trunc, info), seconds = timed_call(lambda: env.step(action))
        total += seconds
        train += info["window_seconds"]
        teacher += info["teacher_seconds"]
        done = term or trunc
        if not info["diverged"]:  # a diverged step ends without a proxy pass
            evaluation += timed_call(lambda: env.run.evaluate("proxy"))[1]
    return EpisodeParts(
        total_s=total,
        train_s=train,
        teacher_forward_s=teacher,
        evaluation_s=evaluation,
        observation_and_step_s=total - train - evaluation,
    )


@dataclass(frozen=True)
class Overhead:
    """Env episodes interleaved with plain loops of the same iterations; medians of parts."""

    preset: str
    iterations: int
    episode_median_s: dict[str, float]
    plain_loop_median_s: float
    training_vs_plain: Interleaved
    """Per pair: seconds in the env's SGD windows / seconds of the plain loop."""
    step_excl_proxy_vs_plain: Interleaved
    """Per pair: episode seconds less proxy-validation / seconds of the plain loop."""
    total_vs_plain: Interleaved
    """Per pair: episode seconds / seconds of the plain loop."""
    direct_episode_1_thread_s: float
    """Single measurement."""
    rllib: dict[str, float]
    """Single measurements (see rllib_episode)."""

    def to_json(self) -> dict:
        plain = "plain PyTorch loop, same iterations"
        return {
            "preset": self.preset,
            "iterations": self.iterations,
            "episode_median_s": self.episode_median_s,
            "plain_loop_median_s": self.plain_loop_median_s,
            "training_vs_plain": self.training_vs_plain.to_json(
                a="env SGD windows of one episode", b=plain, ratio="A seconds / B seconds"
            ),
            "step_excl_proxy_vs_plain": self.step_excl_proxy_vs_plain.to_json(
                a="env episode less proxy-validation", b=plain, ratio="A seconds / B seconds"
            ),
            "total_vs_plain": self.total_vs_plain.to_json(
                a="env episode", b=plain, ratio="A seconds / B seconds"
            ),
            "direct_episode_1_thread_s": self.direct_episode_1_thread_s,
            "rllib_single_measurement": self.rllib,
        }


def overhead(
    preset_name: str,
    pairs: int,
    seed: int = 0,
    with_rllib: bool = True,
    address: str | None = None,
) -> Overhead:
    """Env episodes (A) against the plain loop over the same SGD iterations (B), interleaved;
    the training, step and total ratios all come from the same pairs. Then one directly
    stepped 1-thread episode and one RLlib-sampled episode (single measurements)."""
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(preset=preset_name, report_timing=True, report_test=False)
    iters = env.cfg.total_iters
    plain_loop = PlainLoop(env.run)
    plain = Timed(lambda: plain_loop(iters), env.run.device)
    episodes: list[EpisodeParts] = []

    def episode() -> float:
        episodes.append(env_episode(env, seed))
        return episodes[-1].total_s

    total = interleaved(episode, plain, pairs)
    measured = episodes[WARMUP_PAIRS:]
    medians = {
        f.name: statistics.median(getattr(e, f.name) for e in measured)
        for f in dataclasses.fields(EpisodeParts)
    }
    # An env runner is a 1-CPU Ray actor, so torch runs 1 thread there: compare like with like.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        direct = env_episode(env, seed).total_s
    finally:
        torch.set_num_threads(threads)
    return Overhead(
        preset=preset_name,
        iterations=iters,
        episode_median_s=medians,
        plain_loop_median_s=total.b_median_s,
        training_vs_plain=Interleaved.from_seconds([e.train_s for e in measured], total.b_seconds),
        step_excl_proxy_vs_plain=Interleaved.from_seconds(
            [e.total_s - e.evaluation_s for e in measured], total.b_seconds
        ),
        total_vs_plain=total,
        direct_episode_1_thread_s=direct,
        rllib=rllib_episode(preset_name, direct, address) if with_rllib else {},
    )


def rllib_episode(
    preset_name: str, direct_episode_s: float, address: str | None = None
) -> dict[str, float]:
    """One env runner sampling whole episodes, against the same episode stepped directly with
    one torch thread. Single measurements: RLlib's episode duration is its own running mean,
    so it cannot be paired measurement by measurement."""
    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    with private_ray(workers=1, num_cpus=2, address=address):
        cfg = build_algo_config(
            "PPO",
            {"preset": preset_name, "report_test": False},
            PRESETS[preset_name].windows,
            Resources(num_env_runners=1),
            1,
        )
        algo = cfg.build_algo()
        algo.train()  # warm-up: runner start, first episode
        r, sample_s = timed_call(algo.train)
        per_episode = r["env_runners"]["episode_duration_sec_mean"]
        algo.stop()
    return {
        "rllib_episode_s": per_episode,
        "rllib_iteration_s": sample_s,
        "direct_episode_1_thread_s": direct_episode_s,
        "rllib_episode_over_direct": per_episode / direct_episode_s,
    }
