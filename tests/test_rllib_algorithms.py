"""Each named RLlib algorithm: one training iteration on the tiny env, a checkpoint, and the
policy restored on its own from that checkpoint producing valid actions."""

import numpy as np
import pytest
import ray

from controllers.algorithms import Resources, build_algo_config
from controllers.callbacks import ASGMetricsCallback
from controllers.policy_from_checkpoint import RLModulePolicy
from envs.syn_to_real import SynToRealEnv
from trainables.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize(
    "algo,lstm",
    [
        ("PPO", False),
        ("PPO", True),
        ("APPO", False),
        ("IMPALA", False),
        ("SAC", False),
        ("DQN", False),
    ],
)
def test_train_checkpoint_restore_act(algo, lstm, tmp_path):
    config = build_algo_config(
        algo,
        {"preset": "tiny", "report_timing": True},
        windows_per_episode=3,
        resources=Resources(num_env_runners=1),
        episodes_per_iteration=1,
        use_lstm=lstm,
        callbacks=ASGMetricsCallback,
    )
    algo_obj = config.build_algo()
    try:
        result = algo_obj.train()
        runners = result["env_runners"]
        assert runners["num_episodes_lifetime"] >= 1
        assert 0.0 <= runners["asg/proxy_acc"] <= 1.0  # custom metrics reach the results
        assert "asg/multiplier/head" in runners
        algo_obj.save_to_path(str(tmp_path))
    finally:
        algo_obj.stop()

    env = SynToRealEnv(preset="tiny", action_encoding=config.env_config["action_encoding"])
    policy = RLModulePolicy(tmp_path, env.action_space, env.observation_space)
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    for _ in range(2):
        action = policy.act(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)


def test_checkpoint_from_other_spaces_is_rejected(tmp_path):
    config = build_algo_config("PPO", {"preset": "tiny"}, 3, Resources(num_env_runners=0), 1)
    algo = config.build_algo()
    algo.save_to_path(str(tmp_path))
    algo.stop()
    env = SynToRealEnv(preset="tiny", action_encoding="discrete")
    with pytest.raises(ConfigError, match="trained on"):
        RLModulePolicy(tmp_path, env.action_space, env.observation_space)
    assert np.asarray(env.observation_space.shape).size == 1
