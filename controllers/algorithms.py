"""RLlib algorithms that train the learning-rate policy, picked by name.

Defaults suit an env whose single step is a window of SGD iterations (seconds, not
microseconds): no sample timeout, train batches of a few episodes, env checking off on the
runners (tests run gymnasium's own checker instead), and failed env runners restarted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.registry import ALGORITHMS
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.tune.registry import get_trainable_cls, register_env

from envs.input_errors import make_reporting_env
from envs.syn_to_real import SynToRealEnv
from trainables.errors import ConfigError

ENV_NAME = "asg_syn_to_real"


def algorithm_class(algo: str) -> type:
    """RLlib's Algorithm class registered under `algo` (Tune's public registry).

    The first lookup makes RLlib import every algorithm it ships; DreamerV3's module then
    builds a debug CartPole whose space and observations make gymnasium warn ("The obs
    returned by the `reset()` method is not within the observation space"). Those warnings are
    about RLlib's own test env, not ours, so gymnasium's warnings are ignored for this call
    only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"gymnasium\.")
        return get_trainable_cls(algo)


# The action encoding each algorithm's default RLModule can emit (also how a saved policy's
# module is recognised); an algorithm in UNSUPPORTED below is refused all the same.
ACTION_ENCODING = {
    "PPO": "multidiscrete",
    "APPO": "multidiscrete",
    "IMPALA": "multidiscrete",
    "SAC": "box",
    "DQN": "discrete",
}
# Algorithms that cannot train this controller: offline and model-based ones cannot learn from
# this env's online rollouts as set up; SAC was tried and does not learn the reward's landscape
# (tests/test_rllib_learns.py, docs/results.md "Which algorithms learn").
UNSUPPORTED = {
    "SAC": "its critic smooths the reward's cliff (at multiplier 0.5) into the levels below, "
    "so on the noisy stand-in its rate stays 3 levels low in every setting tried (docs/results.md)",
    "BC": "offline imitation learning: needs a dataset of expert episodes",
    "MARWIL": "offline: needs a dataset of recorded episodes",
    "CQL": "offline RL: needs a dataset of recorded episodes",
    "IQL": "offline RL: needs a dataset of recorded episodes",
    "DreamerV3": "world-model RL for image/vector obs with thousands of cheap steps; "
    "each step here is a window of SGD, so its replay ratio is unaffordable",
}


def make_env(env_config: dict[str, Any]) -> gym.Env:
    """RLlib env creator: SynToRealEnv keyword arguments, plus `input_error_file` (report input
    errors there, see `envs.input_errors`)."""
    kwargs = dict(env_config)
    error_file = kwargs.pop("input_error_file", None)
    return make_reporting_env(kwargs, error_file) if error_file else SynToRealEnv(**kwargs)


@dataclass(frozen=True)
class Resources:
    num_env_runners: int = 2
    cpus_per_env_runner: float = 1
    gpus_per_env_runner: float = 0
    gpus_per_learner: float = 0


def training_settings(algo: str) -> tuple[str, ...]:
    """The keyword arguments `AlgorithmConfig.training()` takes for `algo`: its own class's and
    those its base classes' `training()` accept through **kwargs."""
    import inspect

    config_cls = type(algorithm_class(algo).get_default_config())
    names: set[str] = set()
    for cls in config_cls.__mro__:
        if "training" in vars(cls):
            params = inspect.signature(vars(cls)["training"]).parameters.values()
            names |= {
                p.name for p in params if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
            }
    return tuple(sorted(names - {"self"}))


def parse_training_settings(algo: str, text: str, flag: str = "--algo-config") -> dict[str, Any]:
    """'lr=1e-4,num_epochs=8,entropy_coeff=0.02' into `training()` keyword arguments for
    `algo`. Values are Python literals (numbers, True/False, lists, quoted strings); an unknown
    key or a value that is not a literal is one line naming it."""
    import ast

    settings: dict[str, Any] = {}
    if not text.strip():
        return settings
    known = training_settings(algo)
    for part in _split_top_level(text):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {part!r}: expected <setting>=<value>")
        if key not in known:
            hint = ", ".join(k for k in known if not k.startswith("_"))[:300]
            raise ConfigError(f"{flag} {key}: not a training setting of {algo} ({hint}, ...)")
        try:
            settings[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            raise ConfigError(f"{flag} {key}={raw.strip()}: not a Python literal") from None
    return settings


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets, so that list values keep their commas."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (q.strip() for q in parts) if p]


def action_encoding_for(algo: str) -> str:
    """The env action encoding that `algo` needs; a clear error for one that cannot fit."""
    if algo in UNSUPPORTED:
        raise ConfigError(f"--algo {algo} cannot train this controller: {UNSUPPORTED[algo]}")
    if algo not in ALGORITHMS:
        names = ", ".join(sorted(set(ACTION_ENCODING) - set(UNSUPPORTED)))
        raise ConfigError(f"unknown --algo {algo!r}; RLlib algorithms that fit: {names}")
    return ACTION_ENCODING.get(algo, "multidiscrete")


def episodes_per_iteration_for(requested: int, num_env_runners: int) -> int:
    """Episodes per training iteration that fit `num_env_runners`: `requested` rounded up to a
    multiple of the runner count, so that every runner samples whole episodes each iteration
    (the batch is then episodes x windows and the rollout fragment one episode). This is the
    value that gives way; the runner count and the episode length never do."""
    runners = max(1, num_env_runners)
    return max(1, -(-requested // runners)) * runners


def build_algo_config(
    algo: str,
    env_config: dict[str, Any],
    windows_per_episode: int,
    resources: Resources = Resources(),
    episodes_per_iteration: int = 2,
    use_lstm: bool = False,
    seed: int | None = 0,
    callbacks: type | None = None,
    env_creator: Callable[[dict[str, Any]], gym.Env] = make_env,
    training: dict[str, Any] | None = None,
    init_policy: str | None = None,
) -> AlgorithmConfig:
    """An RLlib AlgorithmConfig for `algo` on the syn-to-real env (or on the env that
    `env_creator` builds from `env_config`: tests pass stand-ins).

    `env_config` holds the creator's keyword arguments; its action encoding is set here to the
    one `algo` needs. `training` (from `parse_training_settings`) overrides the project's
    training settings last, as a user's `--algo-config`. With `init_policy` (a saved-policy
    folder of the same algorithm and model) a fresh algorithm starts from its weights. One
    training iteration consumes
    `episodes_per_iteration_for(episodes_per_iteration, resources.num_env_runners)` episodes.
    """
    encoding = action_encoding_for(algo)
    # Tune's registry lives in the running Ray cluster: register with the one in use now.
    env_name = ENV_NAME if env_creator is make_env else f"{ENV_NAME}/{env_creator.__name__}"
    register_env(env_name, env_creator)
    env_config = {**env_config, "action_encoding": encoding}
    config: AlgorithmConfig = algorithm_class(algo).get_default_config()
    episodes = episodes_per_iteration_for(episodes_per_iteration, resources.num_env_runners)
    batch = max(2, windows_per_episode * episodes)
    config = (
        config.environment(env_name, env_config=env_config, disable_env_checking=True)
        .framework("torch")
        .env_runners(
            num_env_runners=resources.num_env_runners,
            num_envs_per_env_runner=1,
            num_cpus_per_env_runner=resources.cpus_per_env_runner,
            num_gpus_per_env_runner=resources.gpus_per_env_runner,
            sample_timeout_s=None,
            rollout_fragment_length=windows_per_episode,
        )
        .learners(num_learners=0, num_gpus_per_learner=resources.gpus_per_learner)
        .fault_tolerance(
            restart_failed_env_runners=True,
            max_num_env_runner_restarts=100,
            delay_between_env_runner_restarts_s=1.0,
        )
        .debugging(seed=seed)
        # Off-policy defaults ask for 100-1000 env steps per iteration: far too many windows.
        .reporting(min_sample_timesteps_per_iteration=batch, min_time_s_per_iteration=0)
    )
    model = DefaultModelConfig(fcnet_hiddens=[64, 64])
    if use_lstm:  # ASG's policy was recurrent; one sequence = one fine-tuning run
        model = DefaultModelConfig(
            use_lstm=True, lstm_cell_size=64, max_seq_len=windows_per_episode
        )
    config = config.rl_module(model_config=model)
    config = _algo_defaults(algo, config, batch, windows_per_episode)
    if training:
        try:
            config = config.training(**training)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--algo-config: {algo} refused it ({exc})") from None
    if callbacks is not None:
        config = config.callbacks(callbacks)
    if init_policy:
        from functools import partial

        from controllers.meta_train import start_from_policy

        config = config.callbacks(on_algorithm_init=partial(start_from_policy, init_policy))
    return config


def _algo_defaults(algo: str, config: AlgorithmConfig, batch: int, windows: int) -> AlgorithmConfig:
    if algo == "PPO":
        return config.training(
            train_batch_size_per_learner=batch,
            minibatch_size=max(2, batch // 2),
            # Measured on the noisy stand-in (tests/test_rllib_learns.py, seeds 0-5): RLlib's
            # lr 3e-4 with 4 epochs, an entropy bonus of 0.01 and the adaptive KL term reached
            # the best rate on 4 of 6 seeds (5-19 iterations), these on 6 of 6 (1-14): a few
            # episodes per iteration need more and larger steps per batch, and the KL term
            # and the bonus only held the policy near uniform (docs/results.md).
            num_epochs=10,
            lr=1e-3,
            use_kl_loss=False,  # the clipped objective alone bounds each update
            gamma=1.0,  # the return is final minus initial score: do not discount it
            lambda_=0.95,  # GAE: lean on the value baseline to damp run-to-run noise
            entropy_coeff=0.0,
        )
    if algo in ("APPO", "IMPALA"):
        return config.training(**_async_defaults(algo, batch, windows))
    if algo == "DQN":
        return config.training(
            train_batch_size_per_learner=batch,
            num_steps_sampled_before_learning_starts=windows,
            gamma=1.0,
            # Explore for about 100 episodes' worth of windows, then act greedily 95% of the
            # time. RLlib's default decays over 10,000 steps: 1,250 fine-tuning runs of 8
            # windows, far beyond any budget here. On the noisy stand-in the greedy policy is
            # near the best rate after 32-224 episodes (tests/test_rllib_learns.py), so
            # exploring less than that long buys nothing.
            epsilon=[(0, 1.0), (100 * windows, 0.05)],
            # Target Q-network copied every iteration's worth of sampled windows (RLlib: every
            # 500 windows, about 60 runs; too slow to follow a policy that changes each run).
            target_network_update_freq=batch,
            # Replayed windows per sampled window. RLlib's default (one update per sampling
            # call) ties it to the episodes per iteration (16 in the tests, 2-4 in the
            # pipeline); a window costs seconds and an update milliseconds, so fix it high.
            training_intensity=16,
        )
    return config.training(train_batch_size_per_learner=batch)


def _async_defaults(algo: str, batch: int, windows: int) -> dict[str, Any]:
    """IMPALA's and APPO's settings for batches of a few fine-tuning runs (see
    tests/test_rllib_learns.py for what they learn on the noisy stand-in)."""
    episodes = max(1, batch // windows)
    settings: dict[str, Any] = dict(
        train_batch_size_per_learner=batch,
        gamma=1.0,  # the return is final minus initial score: do not discount it
        lr=1e-3,
        # No entropy bonus. RLlib's V-trace advantages are not standardised (PPO's GAE ones
        # are): they are in reward units, a window's reward is about 0.03 and a level about
        # 0.002, so RLlib's 0.01 x entropy weighs heavily. On the noisy stand-in (seed 3, 480
        # episodes) it left the greedy regret at 0.023-0.035 and sampled runs (what the
        # pipeline deploys) returning 0.18-0.19; without it 0.010 and 0.21 (best 0.238).
        entropy_coeff=0.0,
        # Each batch (a few runs) is used for 4 epochs of 2 minibatches of whole episodes, as
        # PPO's is; RLlib's default is one gradient step per batch. Minibatches must be whole
        # rollout fragments (one episode each).
        num_epochs=4,
        minibatch_size=windows * max(1, episodes // 2),
        # With remote env runners, wait up to 1 s for a finished episode instead of polling
        # (RLlib's 0 s): windows take seconds, and the polling driver took 70-90% of a core from
        # the runners doing the SGD (measured with a stand-in whose steps sleep 0.5 s).
        timeout_s_sampler_manager=1.0,
        # broadcast_interval stays 1: new weights reach the runners after every update, since
        # a run sampled with stale weights is an expensive waste.
    )
    if algo == "APPO":
        settings |= dict(
            # A plain queue, each batch trained once (the epochs above reuse it): the circular
            # buffer's learner thread polls every 0.1 ms while it is empty, which is nearly
            # always when batches take minutes, and its reuse count depends on thread timing.
            use_circular_buffer=False,
            # The target policy (APPO's clipping reference) is refreshed after
            # freq x num_batches x iterations_per_batch x batch trained steps: 4 x batch here,
            # about once per iteration with 4 epochs. RLlib's 2 x 8 x 2 x batch came every 16
            # iterations, and the clipped ratio stalled learning between refreshes.
            target_network_update_freq=1,
            circular_buffer_num_batches=4,
            circular_buffer_iterations_per_batch=1,
        )
    return settings
