"""Baseline controllers, algorithm selection and policy loading: no Ray cluster needed."""

import json
import shutil

import numpy as np
import pytest

from controllers.algorithms import ACTION_ENCODING, action_encoding_for
from controllers.baselines import FixedPolicy, RandomPolicy
from controllers.rollout import run_episode
from controllers.saved_policy import load_module, read_policy_meta
from controllers.spec import ControllerSpec, baseline
from envs import actions
from trainables.errors import ConfigError


def _fixed(name: str, groups: int) -> FixedPolicy:
    return FixedPolicy(baseline(name).fixed_multipliers(groups))


def test_hand_tuned_is_small_backbone_large_head():
    mult = actions.to_multipliers("multidiscrete", _fixed("hand_tuned", 7).act(np.zeros(13)), 7)
    assert np.allclose(mult, [0.1] * 6 + [1.0])


def test_schedule_baselines_differ_only_in_their_base_schedule():
    hand = baseline("hand_tuned")
    assert hand.finetune == {} and baseline("constant").fixed_multipliers(3) == [1.0] * 3
    for name in ("cosine", "step"):
        spec = baseline(name)
        assert spec.kind == "baseline" and spec.fixed_multipliers(3) == [0.1, 0.1, 1.0]
        assert spec.finetune == {"schedule": name}
    assert baseline("uniform@0.3").fixed_multipliers(2) == [0.3, 0.3]
    for bad in ("oracle", "uniform@2", "uniform@x"):
        with pytest.raises(ConfigError, match="baseline"):
            baseline(bad)


def test_controller_spec_is_typed_and_round_trips_through_tune_config():
    spec = baseline("hand_tuned").with_(finetune={"guidance_weight": 0.0})
    assert ControllerSpec.from_config(spec.as_config()) == spec
    with pytest.raises(ConfigError, match="kind"):
        ControllerSpec("x", "oracle", multipliers=(1.0,))
    with pytest.raises(ConfigError, match="exactly one"):
        ControllerSpec("x", "baseline", multipliers=(1.0,), random=True)
    with pytest.raises(ConfigError, match="learned iff"):
        ControllerSpec("x", "baseline", policy_dir="/p")


def test_random_policy_is_seeded():
    a, b = RandomPolicy(7), RandomPolicy(7)
    a.reset(1)
    b.reset(1)
    seq_a = [a.act(None).tolist() for _ in range(5)]
    assert seq_a == [b.act(None).tolist() for _ in range(5)]
    b.reset(2)
    assert seq_a != [b.act(None).tolist() for _ in range(5)]


@pytest.mark.parametrize("levels", ["log", "linear"])
@pytest.mark.parametrize("encoding", actions.ENCODINGS)
def test_multipliers_round_trip_through_each_encoding(encoding, levels):
    lv = actions.levels_of(levels)
    mult = np.array([0.1, 0.5, 1.0])
    if encoding == "discrete":
        mult = np.full(3, 0.2)
    back = actions.to_multipliers(encoding, actions.from_multipliers(encoding, mult, lv), 3, lv)
    assert np.allclose(back, mult, atol=1e-6)


def test_algorithm_picks_the_encoding_it_can_emit():
    assert action_encoding_for("PPO") == "multidiscrete"
    assert action_encoding_for("DQN") == "discrete"
    with pytest.raises(ConfigError, match="--algo SAC cannot train this controller: its critic"):
        action_encoding_for("SAC")  # it emits box actions, but does not learn the reward's cliff
    assert set(ACTION_ENCODING) == {"PPO", "APPO", "IMPALA", "SAC", "DQN"}


@pytest.mark.parametrize("name,match", [("PPOX", "unknown --algo"), ("BC", "offline")])
def test_unfit_algorithm_is_a_clear_error(name, match):
    with pytest.raises(ConfigError, match=match):
        action_encoding_for(name)


def test_saved_policy_folder_is_checked_before_loading(tmp_path):
    """--policy-checkpoint takes an exported policy folder; anything else is one clear line,
    and a raw RLlib checkpoint (a pickle) is refused rather than unpickled."""
    with pytest.raises(ConfigError, match="no such file"):
        read_policy_meta(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConfigError, match="not a saved policy"):
        read_policy_meta(tmp_path / "junk")
    rllib = tmp_path / "rllib" / "learner_group" / "learner" / "rl_module" / "default_policy"
    rllib.mkdir(parents=True)
    (rllib / "class_and_ctor_args.pkl").write_bytes(b"not to be unpickled")
    with pytest.raises(ConfigError, match="pickle.*export its policy first"):
        read_policy_meta(tmp_path / "rllib")

    good = {
        "format_version": 1,
        "algo": "PPO",
        "groups": ["stem", "head"],
        "action_encoding": "multidiscrete",
        "model_config": {},
    }
    folder = tmp_path / "policy"
    folder.mkdir()
    for meta, match in [
        ("{not json", "malformed"),
        ({**good, "format_version": 9}, "format_version 9"),
        ({**good, "algo": "BC"}, "unknown algo"),
        ({**good, "groups": []}, "groups"),
        ({**good, "action_encoding": "gaussian"}, "gaussian"),
        ({k: v for k, v in good.items() if k != "groups"}, "malformed"),
    ]:
        (folder / "policy.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
        with pytest.raises(ConfigError, match=match):
            read_policy_meta(folder)
    (folder / "policy.json").write_text(json.dumps(good))
    assert read_policy_meta(folder)["groups"] == ["stem", "head"]
    with pytest.raises(ConfigError, match="cannot load the policy"):  # no module_state.pt
        load_module(folder)


def test_run_episode_returns_one_run_summary_with_the_schedule(tiny_env):
    """The same `RunSummary` shape that Tune trials are collected into and reports read."""
    from envs.summary import END_OF_RUN_KEYS, RunSummary

    env = tiny_env.unwrapped
    result = run_episode(env, _fixed("hand_tuned", len(env.group_names)), 0, "hand_tuned")
    assert isinstance(result, RunSummary) and result.kind == "baseline" and result.seed == 0
    assert len(result.multipliers) == env.cfg.windows
    assert result.multipliers[0]["head"] == 1.0 and result.multipliers[0]["stem"] == 0.1
    as_dict = result.to_dict()
    assert RunSummary.from_dict(as_dict) == result  # what results files hold reads back
    assert all(not isinstance(as_dict[k], float) or as_dict[k] == as_dict[k]  # no NaN left
               for k in END_OF_RUN_KEYS)  # fmt: skip
    assert set(result.proxy_accs) == set(env.run.proxy_names)


def test_interrupted_run_resumes_from_a_weights_only_checkpoint(tmp_path):
    """The Tune trainable's mid-run checkpoint: plain tensors and values, loaded with
    weights_only=True, and a resumed run continues where the saved one stood."""
    import torch

    from controllers.rollout import Resume, policy_state
    from controllers.tune_trainable import load_run_state, save_run_state
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(preset="tiny")
    policy = RandomPolicy(len(env.group_names))

    def save_after_first_window(window, info, reward, total, done):
        if window == 1:
            state = {"env": env.get_state(), "policy": policy_state(policy), "window": window}
            save_run_state(tmp_path, {**state, "return": total, "metrics": info})

    full = run_episode(env, policy, 5, "random", on_window=save_after_first_window)
    saved = load_run_state(tmp_path)
    fresh_env = SynToRealEnv(preset="tiny")
    resume = Resume(saved["env"], saved["policy"], saved["window"], saved["return"])
    rest = run_episode(fresh_env, RandomPolicy(len(env.group_names)), 5, "random", resume=resume)
    assert len(full.multipliers) == env.cfg.windows
    assert rest.multipliers == full.multipliers[1:]  # the random policy's stream carried over
    assert rest.initial_proxy_acc == full.initial_proxy_acc

    # Anything beyond tensors and plain values (here, a pickled Python object) is refused.
    torch.save({"env": RandomPolicy(3)}, tmp_path / "controller_run.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_run_state(tmp_path)


def test_a_finished_run_unrecorded_by_tune_is_found_in_its_own_storage(tmp_path):
    """A driver killed after a trial's last checkpoint reached storage, but before Tune
    recorded it, restores the trial from the checkpoint before: the trainable finds the
    finished run in the same trial folder (whole copies only) instead of running it again,
    and never takes it from another trial's folder (a PBT member restoring a donor's)."""
    from ray import tune

    from controllers.tune_trainable import STATE_FILE, finished_after, save_run_state

    trial = tmp_path / "controller_trainable_ab12c_00001_1_controller=x"
    for index, env_state in ((1, {"window": 2}), (2, None)):
        folder = trial / f"checkpoint_00000{index}"
        folder.mkdir(parents=True)
        save_run_state(folder, {"env": env_state, "metrics": {"proxy_acc": 0.25 * index}})
    (trial / "checkpoint_000003").mkdir()  # a copy cut short: no state file in it
    recorded = tune.Checkpoint(str(trial / "checkpoint_000001"))

    found = finished_after(recorded, "ab12c_00001")
    named = tmp_path / "hand_tuned_seed10000_ab12c_00001"  # tune_runs.trial_name's folders
    shutil.copytree(trial, named)
    assert finished_after(tune.Checkpoint(str(named / "checkpoint_000001")), "ab12c_00001")
    assert found is not None and found["env"] is None and found["metrics"]["proxy_acc"] == 0.5
    assert finished_after(recorded, "ab12c_00002") is None  # another trial's folder
    newest = tune.Checkpoint(str(trial / "checkpoint_000002"))
    assert finished_after(newest, "ab12c_00001") is None  # nothing newer
    (trial / "checkpoint_000002" / STATE_FILE).unlink()
    assert finished_after(recorded, "ab12c_00001") is None  # only an unfinished one is left


def test_deployed_policy_samples_reproducibly_or_acts_greedily(untrained_policy):
    """ASG samples its deployed policy's actions: the draws depend only on (run seed, window),
    so a run is reproducible; greedy deployment ignores the seed."""
    from controllers.saved_policy import RLModulePolicy
    from trainables.models import MODEL_GROUPS

    groups = MODEL_GROUPS["efficientnet_lite0"]
    path = untrained_policy()
    obs = np.zeros(6 + len(groups), dtype=np.float32)

    def actions_for(seed: int, greedy: bool) -> list[list[int]]:
        policy = RLModulePolicy(path, groups, "multidiscrete", greedy=greedy)
        policy.reset(seed)
        return [policy.act(obs).tolist() for _ in range(4)]

    assert actions_for(1, False) == actions_for(1, False)
    assert actions_for(1, False) != actions_for(2, False)
    assert len({tuple(map(tuple, actions_for(s, True))) for s in (1, 2)}) == 1


@pytest.mark.parametrize("runners,asked,episodes", [(1, 2, 2), (8, 4, 8), (8, 10, 16), (64, 2, 64)])
def test_any_number_of_env_runners_fits_the_batch(runners, asked, episodes):
    """Episodes per iteration give way (rounded up to a multiple of the runners), so RLlib
    accepts the batch for 1 to 64 runners instead of raising about its size."""
    from controllers.algorithms import Resources, build_algo_config, episodes_per_iteration_for

    assert episodes_per_iteration_for(asked, runners) == episodes
    config = build_algo_config(
        "PPO", {"preset": "tiny"}, 3, Resources(num_env_runners=runners), asked
    )
    config.validate()
    assert config.train_batch_size_per_learner == 3 * episodes


def test_pbt_member_keeps_its_seed_and_never_copies_at_the_last_window():
    """Tune's PBT copies a donor's whole config, seed included, and may copy a donor's finished
    run at the last window: then two members report one run under one seed, and the paired
    comparison loses a seed (seen in the tiny pipeline as seeds [10000, 10000])."""
    from types import SimpleNamespace

    from controllers.tune_runs import MemberPBT

    pbt = MemberPBT(
        time_attr="training_iteration",
        perturbation_interval=1,
        hyperparam_mutations={"pbt_multipliers": {"head": [0.1, 0.5]}},
        metric="proxy_acc",
        mode="max",
    )
    donor = SimpleNamespace(config={"seed": 1, "pbt_multipliers": {"head": 0.1}, "window": 7})
    member = SimpleNamespace(config={"seed": 2, "pbt_multipliers": {"head": 0.5}, "window": 3})
    config, _ = pbt._get_new_config(member, donor)
    assert config["seed"] == 2 and config["window"] == 7  # the rest is the donor's
    last = {"done": True, "training_iteration": 3, "proxy_acc": 0.1}
    assert pbt.on_trial_result(None, member, last) == pbt.CONTINUE  # nothing copied


def test_a_policy_is_deployed_only_on_the_rate_levels_it_was_trained_on(untrained_policy):
    """A discrete action indexes the levels: a policy trained on ASG's linear levels would pick
    other rates under the log levels, so deployment refuses it in one line."""
    import json

    from controllers.saved_policy import check_deployable
    from trainables.models import MODEL_GROUPS

    folder = untrained_policy()
    groups = MODEL_GROUPS["efficientnet_lite0"]
    assert check_deployable(folder, groups, "log") == "multidiscrete"
    with pytest.raises(ConfigError, match="'log' rate levels.*--rate-levels log"):
        check_deployable(folder, groups, "linear")
    meta = json.loads((folder / "policy.json").read_text())
    del meta["rate_levels"]  # saved before the levels were recorded: ASG's linear ones
    (folder / "policy.json").write_text(json.dumps(meta))
    assert check_deployable(folder, groups, "linear") == "multidiscrete"
    with pytest.raises(ConfigError, match="'linear' rate levels"):
        check_deployable(folder, groups, "log")


def test_a_grown_study_runs_only_the_missing_seeds_and_pbt_whole(monkeypatch):
    """`run_controllers` with earlier runs (ablation --reuse): rows missing the same seeds run as
    one experiment, named deterministically so that --resume finds it; PBT runs whole."""
    from controllers import tune_runs
    from envs.summary import RunSummary

    calls = []

    def summary(method: str, seed: int) -> RunSummary:
        return RunSummary(method=method, kind="baseline", seed=seed, proxy_acc=0.5,
                          episode_return=0.0, diverged=False, wall_s=1.0, test_acc=0.5)  # fmt: skip

    def fit(exp, space, tune_config):
        methods = [c["method"] for c in space["controller"]["grid_search"]]
        calls.append((methods, exp.seeds, exp.name))
        return [summary(m, s) for m in methods for s in exp.seeds]

    def pbt(cfg, storage, resources, seeds, resume, spec):
        calls.append(([spec.method], seeds, "pbt"))
        return [summary(spec.method, s) for s in seeds]

    monkeypatch.setattr(tune_runs, "_fit_controller_trials", fit)
    monkeypatch.setattr(tune_runs, "run_pbt", pbt)
    done = [summary("uniform 0.2", 1), summary("uniform 0.2", 2), summary("random", 1),
            summary("pbt", 1)]  # fmt: skip
    specs = [baseline("uniform@0.2"), baseline("random"), baseline("hand_tuned"), baseline("pbt")]
    res = tune_runs.TrialResources()
    runs = tune_runs.run_controllers(specs, [1, 2, 3], None, None, "rows", res, done=done)
    assert calls == [
        (["uniform 0.2"], [3], "rows"),
        (["random"], [2, 3], "rows_2"),
        (["hand_tuned"], [1, 2, 3], "rows_3"),
        (["pbt"], [1, 2, 3], "pbt"),
    ]
    assert len(runs) == 1 + 2 + 3 + 3
    calls.clear()
    assert tune_runs.run_controllers(specs[:1], [1, 2], None, None, "rows", res, done=done) == []
    assert calls == []
