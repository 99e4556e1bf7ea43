"""Drive one fine-tuning run (one env episode) with any controller and summarise it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controllers.baselines import Policy
from envs.summary import RunSummary
from envs.syn_to_real import SynToRealEnv


@dataclass
class Resume:
    """Where an interrupted episode stood at its last checkpoint."""

    env_state: dict[str, Any]
    policy_state: dict[str, Any] | None
    window: int
    episode_return: float


def policy_state(policy: Policy) -> dict[str, Any] | None:
    """The part of a policy that changes during an episode (a random policy's generator)."""
    get_state = getattr(policy, "get_state", None)
    return get_state() if get_state is not None else None


WindowCallback = Callable[[int, dict[str, Any], float, float, bool], None]


def run_episode(
    env: SynToRealEnv,
    policy: Policy,
    seed: int,
    method: str,
    on_window: WindowCallback | None = None,
    resume: Resume | None = None,
    kind: str = "baseline",
) -> RunSummary:
    """One full fine-tuning run from the pretrained weights, with `policy` picking the rates.

    `on_window(window, info, reward, episode_return, done)` runs after every window (Tune
    reports and checkpoints there); `resume` continues an episode from its checkpoint.
    """
    if policy.action_encoding != env.action_encoding:
        raise ValueError(f"policy emits {policy.action_encoding}, env takes {env.action_encoding}")
    t0 = time.perf_counter()
    policy.reset(seed)
    if resume is None:
        obs, info0 = env.reset(seed=seed)
        initial, window, total = info0["proxy_acc"], 0, 0.0
    else:
        obs = env.set_state(resume.env_state)
        if resume.policy_state is not None:
            policy.set_state(resume.policy_state)  # type: ignore[attr-defined]
        initial, window, total = env.initial_proxy_acc, resume.window, resume.episode_return
    done, info, schedule, seconds, guidance = False, {}, [], [], []
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        total += reward
        window += 1
        done = terminated or truncated
        schedule.append(info["multipliers"])
        seconds += [info["window_seconds"]] if "window_seconds" in info else []
        guidance += [info["teacher_seconds"]] if "teacher_seconds" in info else []
        if on_window is not None:
            on_window(window, info, reward, total, done)
    return RunSummary.from_end(
        info,
        method=method,
        kind=kind,
        seed=seed,
        proxy_acc=info["proxy_acc"],
        initial_proxy_acc=initial,
        episode_return=total,
        diverged=bool(info["diverged"]),
        wall_s=time.perf_counter() - t0,
        window_s=_mean(seconds),
        guidance_pass_s=_mean(guidance),
        multipliers=schedule,
        wise_alpha=float(getattr(getattr(env, "run", None), "wise_alpha", math.nan)),
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
