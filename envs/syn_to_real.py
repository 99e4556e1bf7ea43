"""Synthetic-to-real fine-tuning as a Gymnasium environment (ASG's learning-to-optimise task).

One episode is one fine-tuning run from the ImageNet-pretrained weights. One step is one window
of `iters_per_window` SGD iterations at the per-group rates the action picks, followed by a
proxy-validation pass. The real test split is never used for the reward: its accuracy appears
only in `info["test_acc"]` at the episode's end, for reporting.

Observation (float32, `OBS_FIELDS` names each entry; G = number of layer groups). Every entry is
scaled to be O(1) for any model, class count and guidance, so policies transfer between tasks:
    0  task_loss          mean cross-entropy over the last window / ln(num_classes) (1 = chance)
    1  guidance_loss      log(1 + mean unweighted guidance loss over the last window)
    2  progress           fraction of the run's SGD iterations done, in [0, 1]
    3  head_weight_mean   mean of the new task head's weights / their initial std
    4  head_weight_std    std of the new task head's weights / their initial std
    5  proxy_acc          last proxy-validation mean per-class accuracy, in [0, 1]
    6.. multiplier[g]     each group's current learning-rate multiplier, in [0, 1]

Reward: the change over the step in the proxy score, so an episode's return is final minus
initial score. The score is the proxy split's mean per-class accuracy (`reward_metric='acc'`) or
minus its mean NLL ('nll'), minus `reward_retention` x KL(teacher || model) on natural photos.
With `head_warmup_iters`, the initial score is that of a linear probe, not of a random head. A
non-finite loss ends the episode (`terminated=True`: a failure, not a time limit) with reward
`diverge_penalty` (default -1) and `info["diverged"] = True`; the next `reset` restores clean
pretrained weights.

At the episode's end, with `report_test`, `info` also carries (for reporting, never reward):
`test_acc` / `test_overall_acc` (real target), `proxy_accs` / `proxy_nlls` (every proxy split the
data offers) and the ImageNet retention on natural photos (`imagenet_top1`, `imagenet_top5`,
`imagenet_kl`: agreement with the frozen pretrained model's ImageNet head), and
`test_feature_energy`, the hyperspherical energy of the real test features (CSG's diagnostic).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from envs import actions
from envs.spaces import LOSS_CAP, OBS_FIELDS, observation_space
from envs.summary import EndOfRun
from trainables import config as config_lib
from trainables.config import FinetuneConfig
from trainables.finetune import FinetuneRun
from trainables.metrics import Accuracy


def resolve_config(
    preset: str = "tiny", config: FinetuneConfig | dict[str, Any] | None = None, **overrides: Any
) -> FinetuneConfig:
    """The FinetuneConfig an env built with these arguments runs."""
    if isinstance(config, dict):
        config = FinetuneConfig(**config)
    return config.replace(**overrides) if config else config_lib.preset(preset, **overrides)


class SynToRealEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        preset: str = "tiny",
        action_encoding: str = "multidiscrete",
        diverge_penalty: float = -1.0,
        report_test: bool = True,
        report_timing: bool = False,
        config: FinetuneConfig | dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        """Build from a preset ('tiny', 'embedded', 'visda') with FinetuneConfig field overrides,
        or from a complete `config`. `report_timing` adds wall times to `info`; it is off by
        default because timings make `info` differ between identical runs."""
        self.cfg = resolve_config(preset, config, **overrides)
        self.action_encoding = action_encoding
        self.diverge_penalty = float(diverge_penalty)
        self.report_test = report_test
        self.report_timing = report_timing
        self.run = FinetuneRun(self.cfg)
        g = self.run.num_groups
        self.group_names = self.run.group_names
        self.levels = actions.levels_of(self.cfg.rate_levels)
        self.action_space = actions.action_space(action_encoding, g)
        self.observation_space = observation_space(g)
        self._last_obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        self._loss_scale = math.log(max(self.run.splits.num_classes, 2))
        # std of nn.Linear's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self._head_scale = 1.0 / math.sqrt(3.0 * self.run.model.task_head.in_features)

    @property
    def obs_names(self) -> tuple[str, ...]:
        return OBS_FIELDS + tuple(f"multiplier/{n}" for n in self.group_names)

    def _observe(self, task_loss: float, guidance_loss: float, proxy_acc: float) -> np.ndarray:
        mean, std = self.run.head_weight_stats()
        progress = self.run.iteration / self.cfg.total_iters
        vec = [task_loss / self._loss_scale, math.log1p(max(guidance_loss, 0.0)), progress]
        vec += [mean / self._head_scale, std / self._head_scale]
        vec += [proxy_acc, *self.run.multipliers()]
        obs = np.nan_to_num(np.asarray(vec, dtype=np.float64), nan=LOSS_CAP, posinf=LOSS_CAP)
        return np.clip(obs, self.observation_space.low, self.observation_space.high).astype(
            np.float32
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        run_seed = int(self.np_random.integers(2**31 - 1))
        self.run.reset(run_seed)
        proxy = self.run.evaluate("proxy")
        acc = proxy.mean_class
        self._proxy_acc = self._initial_proxy_acc = acc
        self._score = self._initial_score = self._score_of(proxy)
        self._last_obs = self._observe(self._loss_scale, 0.0, acc)
        return self._last_obs, {"proxy_acc": acc, "score": self._score, "run_seed": run_seed}

    def _score_of(self, proxy: Accuracy) -> float:
        """What the reward differences: the proxy metric, minus retention loss if asked for."""
        cfg = self.cfg
        score = proxy.score(cfg.reward_metric)
        if cfg.reward_retention > 0:
            kept = self.run.retention()
            score -= cfg.reward_retention * (kept.kl if kept is not None else 0.0)
        return score

    @property
    def initial_proxy_acc(self) -> float:
        """Proxy accuracy of the pretrained model at this episode's start."""
        return self._initial_proxy_acc

    def get_state(self) -> dict[str, Any]:
        """Mid-episode state for checkpointing (see FinetuneRun.state_dict)."""
        return {
            "run": self.run.state_dict(),
            "proxy_acc": self._proxy_acc,
            "initial_proxy_acc": self._initial_proxy_acc,
            "score": self._score,
            "initial_score": self._initial_score,
            "last_obs": self._last_obs,
        }

    def set_state(self, state: dict[str, Any]) -> np.ndarray:
        """Continue an episode saved by `get_state`; returns its last observation."""
        self.run.load_state_dict(state["run"])
        self._proxy_acc = state["proxy_acc"]
        self._initial_proxy_acc = state["initial_proxy_acc"]
        self._score, self._initial_score = state["score"], state["initial_score"]
        self._last_obs = np.asarray(state["last_obs"], dtype=np.float32)
        return self._last_obs

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        mult = actions.to_multipliers(
            self.action_encoding, action, self.run.num_groups, self.levels
        )
        stats = self.run.train_window(mult.tolist())
        info: dict[str, Any] = {
            "multipliers": dict(zip(self.group_names, mult.tolist(), strict=True)),
            "images": stats.images,
            "diverged": stats.diverged,
        }
        if self.report_timing:
            info |= {"window_seconds": stats.seconds, "teacher_seconds": stats.teacher_seconds}
        if stats.diverged:
            # A failure, not a time limit: the episode terminates. Keep the last finite
            # observation; the model is discarded at the next reset. A diverged run is still
            # scored (a NaN model predicts one class), so that reports count it as the failure
            # it is instead of dropping it.
            info["proxy_acc"] = self._proxy_acc
            if self.report_test:
                info |= self._final_report(None)
            return self._last_obs, self.diverge_penalty, True, False, info
        proxy = self.run.evaluate("proxy")
        acc, score = proxy.mean_class, self._score_of(proxy)
        reward = score - self._score
        self._proxy_acc, self._score = acc, score
        terminated = self.run.finished
        info |= {"proxy_acc": acc, "task_loss": stats.task_loss}
        if terminated:
            info["proxy_gain"] = acc - self._initial_proxy_acc
            info["score_gain"] = score - self._initial_score
            if self.report_test:
                info |= self._final_report(proxy)
        self._last_obs = self._observe(stats.task_loss, stats.guidance_loss, acc)
        return self._last_obs, float(reward), terminated, False, info

    def _final_report(self, chosen: Accuracy | None) -> dict[str, Any]:
        """Real-target accuracy, every proxy split, ImageNet retention and feature energy (an
        `EndOfRun`): for judging methods, proxies and guidance. None of it feeds the reward."""
        test, energy = self.run.evaluate_with_energy("test")
        reward_proxy = self.cfg.reward_proxy
        proxies = {
            n: chosen if (n == reward_proxy and chosen) else self.run.evaluate(f"proxy/{n}")
            for n in self.run.proxy_names
        }
        kept = self.run.retention()
        end = EndOfRun(
            test_acc=test.mean_class,
            test_overall_acc=test.overall,
            proxy_accs={n: a.mean_class for n, a in proxies.items()},
            proxy_nlls={n: a.nll for n, a in proxies.items()},
            test_feature_energy=energy,
            **(
                {}
                if kept is None
                else {
                    "imagenet_top1": kept.top1_agreement,
                    "imagenet_top5": kept.top5_overlap,
                    "imagenet_kl": kept.kl,
                }
            ),
        )
        return end.to_info()
