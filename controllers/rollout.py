"""Drive one fine-tuning run (one env episode) with any controller and summarise it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controllers.baselines import Policy
from envs.syn_to_real import SynToRealEnv


@dataclass
class EpisodeResult:
    method: str
    seed: int
    test_acc: float
    """Real-target mean per-class accuracy at the end of the run (reporting only)."""
    test_overall_acc: float
    proxy_acc: float
    """Final proxy-validation mean per-class accuracy."""
    initial_proxy_acc: float
    episode_return: float
    diverged: bool
    wall_s: float
    multipliers: list[dict[str, float]] = field(default_factory=list)
    """The per-group multipliers applied at each window: the policy's behaviour."""


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
) -> EpisodeResult:
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
    done, info, schedule = False, {}, []
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        total += reward
        window += 1
        done = terminated or truncated
        schedule.append(info["multipliers"])
        if on_window is not None:
            on_window(window, info, reward, total, done)
    return EpisodeResult(
        method=method,
        seed=seed,
        test_acc=info.get("test_acc", math.nan),
        test_overall_acc=info.get("test_overall_acc", math.nan),
        proxy_acc=info["proxy_acc"],
        initial_proxy_acc=initial,
        episode_return=total,
        diverged=bool(info["diverged"]),
        wall_s=time.perf_counter() - t0,
        multipliers=schedule,
    )
