"""The Gymnasium environment: API compliance, spaces, rewards, divergence, reproducibility."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import actions
from envs.syn_to_real import OBS_FIELDS, SynToRealEnv


def test_registered():
    env = gym.make(envs.ENV_ID, preset="tiny")
    assert isinstance(env.unwrapped, SynToRealEnv)
    env.close()


def test_passes_gymnasium_checker():
    env = SynToRealEnv(preset="tiny")
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("encoding", actions.ENCODINGS)
def test_action_encodings(encoding):
    env = SynToRealEnv(preset="tiny", action_encoding=encoding, windows=1)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert terminated and not truncated
    assert set(info["multipliers"]) == set(env.group_names)
    assert all(0.0 <= m <= 1.0 for m in info["multipliers"].values())


def test_observation_documents_every_entry(tiny_env):
    env = tiny_env.unwrapped
    assert len(env.obs_names) == env.observation_space.shape[0]
    assert env.obs_names[: len(OBS_FIELDS)] == OBS_FIELDS


def test_step_reports_multipliers(tiny_env):
    """(Step timings are in experiments/benchmark_env.py, not asserted here.)"""
    env = tiny_env.unwrapped
    obs, _ = env.reset(seed=1)
    obs, *_ = env.step(np.array([3] * len(env.group_names)))
    # Observation carries the multipliers that were applied.
    assert np.allclose(obs[len(OBS_FIELDS) :], env.levels[3], atol=1e-6)


@pytest.mark.parametrize("metric,retention", [("acc", 0.0), ("nll", 0.0), ("acc", 1.0)])
def test_reward_follows_the_chosen_proxy_score(metric, retention):
    """The return is the score's final minus initial value, for each reward choice; the NLL
    reward is minus the proxy NLL, and retention subtracts the photo KL."""
    env = SynToRealEnv(preset="tiny", reward_metric=metric, reward_retention=retention)
    _, info0 = env.reset(seed=2)
    total, done, info = 0.0, False, {}
    while not done:
        _, r, terminated, truncated, info = env.step(np.full(len(env.group_names), 5))
        total += r
        done = terminated or truncated
    chosen = env.cfg.reward_proxy
    final = info["proxy_accs"][chosen] if metric == "acc" else -info["proxy_nlls"][chosen]
    final -= retention * info["imagenet_kl"]
    initial = info0["score"]
    assert math.isclose(total, final - initial, abs_tol=1e-6)
    assert set(info["proxy_accs"]) == {"synthetic", "heldout_fonts", "real_fewshot"}
    assert info["imagenet_kl"] >= 0.0


def test_same_seed_same_actions_same_trajectory():
    def rollout():
        env = SynToRealEnv(preset="tiny")
        obs, _ = env.reset(seed=123)
        traj = [obs]
        for a in ([10] * 7, [1] * 7, [5] * 7):
            obs, r, *_ = env.step(np.array(a))
            traj += [obs, np.array([r])]
        return np.concatenate(traj)

    assert np.array_equal(rollout(), rollout())


def test_different_seed_different_trajectory(tiny_env):
    env = tiny_env.unwrapped
    a = np.array([10] * len(env.group_names))
    env.reset(seed=5)
    o1, *_ = env.step(a)
    env.reset(seed=6)
    o2, *_ = env.step(a)
    assert not np.array_equal(o1, o2)


def test_divergence_terminates_with_penalty_and_next_episode_is_clean():
    env = SynToRealEnv(preset="tiny", base_lr=1e30, diverge_penalty=-2.0, head_warmup_iters=0)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([10] * len(env.group_names)))
    assert info["diverged"] is True
    assert terminated and not truncated  # a failure, not a time limit
    assert reward == -2.0
    assert env.observation_space.contains(obs) and np.isfinite(obs).all()
    assert info["test_acc"] <= 0.2  # scored as the failure it is (about chance), not dropped
    env.reset(seed=0)
    assert env.run.model_is_finite()  # reset restored clean pretrained weights
    obs, reward, *_ = env.step(np.zeros(len(env.group_names), dtype=np.int64))  # lr 0: no NaN
    assert np.isfinite(obs).all() and np.isfinite(reward)


def test_real_test_split_never_feeds_the_reward(tiny_env):
    env = tiny_env.unwrapped
    seen = []
    scorers = ("evaluate", "evaluate_with_energy")  # every way the run scores a split

    def spy(original):
        return lambda split, *args, **kwargs: (
            seen.append(split),
            original(split, *args, **kwargs),
        )[1]

    for name in scorers:
        setattr(env.run, name, spy(getattr(env.run, name)))
    try:
        env.reset(seed=0)
        done = False
        while not done:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
            if not done:
                assert "test" not in seen
    finally:
        for name in scorers:
            delattr(env.run, name)  # the class's methods again
    assert seen.count("test") == 1
    assert all(s == "proxy" for s in seen[: seen.index("test")])


def test_input_errors_are_recorded_and_end_the_episode(tmp_path):
    """Inside an env runner, a bad input becomes one line in a file and short episodes (see
    envs.input_errors), at build time and mid-episode alike."""

    from envs.input_errors import InputErrorEnv, make_reporting_env
    from trainables.data.image_list import make_image_tree

    log = tmp_path / "errors.txt"
    env = make_reporting_env({"preset": "tiny", "dataset": "visda", "data_root": "/no/data"}, log)
    assert isinstance(env, InputErrorEnv) and "/no/data" in log.read_text()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.step(env.action_space.sample())[3]  # truncated at once
    assert env.observation_space == SynToRealEnv(preset="tiny").observation_space

    tree = make_image_tree(tmp_path / "visda", n_per_class=3, size=16)
    kwargs = {"preset": "tiny", "dataset": "visda", "data_root": str(tree), "fewshot_per_class": 1}
    env = make_reporting_env(kwargs, tmp_path / "mid.txt")
    obs, _ = env.reset(seed=0)
    for path in (tree / "train").rglob("*.png"):  # every training image goes bad mid-run
        path.write_bytes(b"corrupt")
    *_, truncated, info = env.step(env.action_space.sample())
    assert truncated and info["input_error"]
    assert "cannot read image" in (tmp_path / "mid.txt").read_text()
