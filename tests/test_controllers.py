"""Baseline controllers, algorithm selection and policy loading: no Ray cluster needed."""

import numpy as np
import pytest

from controllers.algorithms import ACTION_ENCODING, action_encoding_for
from controllers.baselines import RandomPolicy, make_baseline
from controllers.policy_from_checkpoint import find_module_dir
from controllers.rollout import run_episode
from envs import actions
from trainables.errors import ConfigError


def test_hand_tuned_is_small_backbone_large_head():
    policy = make_baseline("hand_tuned", 7)
    mult = actions.to_multipliers("multidiscrete", policy.act(np.zeros(13)), 7)
    assert np.allclose(mult, [0.1] * 6 + [1.0])


def test_constant_and_unknown_baseline():
    mult = actions.to_multipliers("multidiscrete", make_baseline("constant", 3).act(None), 3)
    assert np.allclose(mult, 1.0)
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("oracle", 3)


def test_random_policy_is_seeded():
    a, b = RandomPolicy(7), RandomPolicy(7)
    a.reset(1)
    b.reset(1)
    seq_a = [a.act(None).tolist() for _ in range(5)]
    assert seq_a == [b.act(None).tolist() for _ in range(5)]
    b.reset(2)
    assert seq_a != [b.act(None).tolist() for _ in range(5)]


@pytest.mark.parametrize("encoding", actions.ENCODINGS)
def test_multipliers_round_trip_through_each_encoding(encoding):
    mult = np.array([0.1, 0.5, 1.0])
    if encoding == "discrete":
        mult = np.full(3, 0.3)
    back = actions.to_multipliers(encoding, actions.from_multipliers(encoding, mult), 3)
    assert np.allclose(back, mult, atol=1e-6)


def test_algorithm_picks_the_encoding_it_can_emit():
    assert action_encoding_for("PPO") == "multidiscrete"
    assert action_encoding_for("SAC") == "box"
    assert action_encoding_for("DQN") == "discrete"
    assert set(ACTION_ENCODING) == {"PPO", "APPO", "IMPALA", "SAC", "DQN"}


@pytest.mark.parametrize("name,match", [("PPOX", "unknown --algo"), ("BC", "offline")])
def test_unfit_algorithm_is_a_clear_error(name, match):
    with pytest.raises(ConfigError, match=match):
        action_encoding_for(name)


def test_policy_checkpoint_must_be_an_rllib_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        find_module_dir(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConfigError, match="not an RLlib checkpoint"):
        find_module_dir(tmp_path / "junk")


def test_run_episode_records_the_schedule(tiny_env):
    env = tiny_env.unwrapped
    result = run_episode(env, make_baseline("hand_tuned", len(env.group_names)), 0, "hand_tuned")
    assert len(result.multipliers) == env.cfg.windows
    assert result.multipliers[0]["head"] == 1.0 and result.multipliers[0]["stem"] == 0.1
    assert 0.0 <= result.test_acc <= 1.0
    assert result.episode_return == pytest.approx(result.proxy_acc - result.initial_proxy_acc)
