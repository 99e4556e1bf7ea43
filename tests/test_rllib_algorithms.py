"""Each named RLlib algorithm: one training iteration on the tiny env, a checkpoint, the policy
exported from it to plain data, and that policy, loaded with weights_only, acting exactly as the
RLlib-restored module does."""

from pathlib import Path

import numpy as np
import pytest
import torch
from doubles import standin_env

from controllers.algorithms import Resources, action_encoding_for, build_algo_config, make_env
from controllers.callbacks import ASGMetricsCallback
from controllers.saved_policy import RLLIB_MODULE_SUBDIR, RLModulePolicy, export_policy
from envs.syn_to_real import SynToRealEnv
from trainables.errors import ConfigError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]


@pytest.mark.parametrize(
    "algo,lstm,on_tiny",
    [
        ("PPO", False, True),
        ("PPO", True, True),
        # SAC is refused (controllers.algorithms.UNSUPPORTED; test_rllib_learns.py checks it).
        ("DQN", False, True),
        # APPO and IMPALA take PPO's MultiDiscrete actions, whose path through the real env the
        # PPO cases cover; on the tiny env their asynchronous sampling costs minutes per
        # iteration, so they train on the stand-in with the real env's spaces.
        ("APPO", False, False),
        ("IMPALA", False, False),
    ],
)
def test_train_checkpoint_restore_act(algo, lstm, on_tiny, tmp_path):
    env = SynToRealEnv(preset="tiny", action_encoding=action_encoding_for(algo))
    env_config, creator = {"preset": "tiny", "report_timing": True}, make_env
    if not on_tiny:
        env_config, creator = {"num_groups": len(env.group_names), "windows": 3}, standin_env
    config = build_algo_config(
        algo,
        env_config,
        windows_per_episode=3,
        # Sampling in the driver's own env runner: remote runners (weight sync, restarts,
        # metrics from several processes) are the pipeline tests' concern, and each remote
        # one costs seconds to start.
        resources=Resources(num_env_runners=0),
        episodes_per_iteration=1,
        use_lstm=lstm,
        callbacks=ASGMetricsCallback,
        env_creator=creator,
    )
    algo_obj = config.build_algo()
    try:
        result = algo_obj.train()
        runners = result["env_runners"]
        assert runners["num_episodes_lifetime"] >= 1
        if on_tiny:
            assert 0.0 <= runners["asg/proxy_acc"] <= 1.0  # custom metrics reach the results
            assert "asg/multiplier/head" in runners
        algo_obj.save_to_path(str(tmp_path))
    finally:
        algo_obj.stop()

    encoding = config.env_config["action_encoding"]
    saved = export_policy(tmp_path, tmp_path / "policy", env.group_names, "log")
    policy = RLModulePolicy(saved, env.group_names, encoding)
    assert all(not str(p).endswith(".pkl") for p in saved.iterdir())

    # The weights really came across: the rebuilt module computes what RLlib's own restore does.
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModule

    reference = RLModule.from_checkpoint(tmp_path / RLLIB_MODULE_SUBDIR)
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(4)]))
    batch = {Columns.OBS: obs[:, None] if lstm else obs}
    if lstm:
        initial = reference.get_initial_state().items()
        batch[Columns.STATE_IN] = {k: torch.stack([torch.as_tensor(v)] * 4) for k, v in initial}
    with torch.no_grad():
        ours, theirs = policy.module.forward_inference(batch), reference.forward_inference(batch)
    key = Columns.ACTION_DIST_INPUTS if Columns.ACTION_DIST_INPUTS in ours else Columns.ACTIONS
    assert torch.equal(ours[key], theirs[key])
    theirs = reference.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in policy.module.state_dict().items())

    obs, _ = env.reset(seed=0)
    policy.reset(0)
    for _ in range(2):
        action = policy.act(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)


def test_policy_for_other_layer_groups_is_rejected(tmp_path):
    config = build_algo_config("PPO", {"preset": "tiny"}, 3, Resources(num_env_runners=0), 1)
    algo = config.build_algo()
    algo.save_to_path(str(tmp_path))
    algo.stop()
    env = SynToRealEnv(preset="tiny")
    saved = export_policy(tmp_path, tmp_path / "policy", env.group_names, "log")
    resnet = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "head")
    with pytest.raises(ConfigError, match="layer groups"):
        RLModulePolicy(saved, resnet, "multidiscrete")  # same sizes, other architecture
    with pytest.raises(ConfigError, match="discrete actions"):
        RLModulePolicy(saved, env.group_names, "discrete")
    with pytest.raises(ConfigError, match="groups"):
        export_policy(tmp_path, tmp_path / "other", ("conv1", "head"), "log")


def test_meta_training_continues_from_its_latest_snapshot(tmp_path):
    """Asking for milestones beyond the saved ones continues from the latest snapshot: the saved
    snapshots are kept as they are, the episode count carries on, and the continued run starts
    from the saved policy's weights (not a fresh initialisation)."""
    from controllers.meta_train import load_policy_weights, train_with_snapshots

    env = SynToRealEnv(preset="tiny")
    config = build_algo_config("PPO", {"preset": "tiny"}, 3, Resources(num_env_runners=0), 1)
    first = train_with_snapshots(
        config, [0, 1], tmp_path, env.group_names, "log", log=lambda _: None
    )
    saved_bytes = (Path(first[-1].path) / "module_state.pt").read_bytes()

    lines: list[str] = []
    both = train_with_snapshots(
        config, [0, 1, 2], tmp_path, env.group_names, "log", log=lines.append
    )
    assert [s.milestone for s in both] == [0, 1, 2]
    key = lambda s: (s.milestone, s.episodes, s.path, s.meta_wall_s)  # noqa: E731 (nan != nan)
    assert list(map(key, both[:2])) == list(map(key, first))
    assert both[2].episodes >= first[1].episodes + 1 and both[2].meta_wall_s > first[1].meta_wall_s
    assert any("continuing meta-training" in line for line in lines)
    assert (Path(first[-1].path) / "module_state.pt").read_bytes() == saved_bytes
    # Each training iteration is a TensorBoard point under the snapshots' folder.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert "meta_train/episode_return_mean" in events.Tags()["scalars"]

    # The weights a continuation starts from are exactly the snapshot's.
    algo = config.build_algo()
    try:
        load_policy_weights(algo, Path(first[-1].path))
        module = algo.get_module()
        saved = torch.load(Path(first[-1].path) / "module_state.pt", weights_only=True)
        assert all(torch.equal(v, saved[k]) for k, v in module.state_dict().items())
        # --init-policy: a fresh algorithm built with it starts from the same weights.
        started = build_algo_config(
            "PPO", {"preset": "tiny"}, 3, Resources(0), 1, init_policy=first[-1].path
        ).build_algo()
        try:
            state = started.get_module().state_dict()
            assert all(torch.equal(v, saved[k]) for k, v in state.items())
        finally:
            started.stop()
        with pytest.raises(ConfigError, match="does not fit"):
            lstm = build_algo_config("PPO", {"preset": "tiny"}, 3, Resources(0), 1, use_lstm=True)
            other = lstm.build_algo()
            try:
                load_policy_weights(other, Path(first[-1].path))
            finally:
                other.stop()
    finally:
        algo.stop()


def test_algo_config_settings_reach_the_algorithm_and_unknown_ones_are_refused():
    from controllers.algorithms import parse_training_settings, training_settings

    settings = parse_training_settings("PPO", "lr=1e-4,num_epochs=7,entropy_coeff=0.03")
    assert settings == {"lr": 1e-4, "num_epochs": 7, "entropy_coeff": 0.03}
    config = build_algo_config("PPO", {"preset": "tiny"}, windows_per_episode=3, training=settings)
    assert (config.lr, config.num_epochs, config.entropy_coeff) == (1e-4, 7, 0.03)
    default = build_algo_config("PPO", {"preset": "tiny"}, windows_per_episode=3)
    assert default.num_epochs != 7  # the project's own value without the flag
    assert "target_network_update_freq" in training_settings("DQN")
    assert "target_network_update_freq" not in training_settings("PPO")
    with pytest.raises(ConfigError, match="--algo-config target_network_update_freq: not a"):
        parse_training_settings("PPO", "target_network_update_freq=10")
    assert parse_training_settings("SAC", "tau=0.01,n_step=[1, 3]")["n_step"] == [1, 3]
