"""The benchmark's noise levers: the linear-probe head start, the cached teacher logits, the
annealed tail and the log-spaced rate levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from envs import actions
from trainables.config import preset
from trainables.errors import ConfigError
from trainables.finetune import FinetuneRun
from trainables.probe import fit_linear_probe


def test_linear_probe_reaches_the_regularised_optimum():
    torch.manual_seed(0)
    x = torch.randn(200, 6)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    w, b = fit_linear_probe(x, y, num_classes=3, l2=1e-2)
    w.requires_grad_(True)
    b.requires_grad_(True)
    loss = F.cross_entropy(x @ w.T + b, y) + 0.5e-2 * w.pow(2).sum()
    gw, gb = torch.autograd.grad(loss, [w, b])
    assert gw.abs().max() < 1e-4 and gb.abs().max() < 1e-4  # the gradient vanishes: converged


def test_probe_head_is_the_same_for_every_seed_and_leaves_the_backbone_alone():
    run = FinetuneRun(preset("tiny", head_init="probe"))
    pretrained = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.reset(1)
    head_1 = run.model.task_head.weight.detach().clone()
    proxy_1 = run.evaluate("proxy").mean_class
    run.reset(2)
    assert torch.equal(run.model.task_head.weight, head_1)
    assert run.evaluate("proxy").mean_class == proxy_1
    moved = [k for k, v in run.model.state_dict().items() if not torch.equal(v, pretrained[k])]
    assert moved and all(k.startswith("task_head") for k in moved)
    # a fitted probe beats a random head on the proxy split by a wide margin
    sgd = FinetuneRun(preset("tiny", head_init="sgd", head_warmup_iters=0), splits=run.splits)
    sgd.reset(1)
    assert proxy_1 > sgd.evaluate("proxy").mean_class + 0.2


def test_cached_teacher_logits_give_the_live_teachers_kl():
    cached = FinetuneRun(preset("tiny", head_init="probe", guidance_weight=0.1))
    assert cached._frozen is not None
    x, logits = cached.splits.train.tensors[0][:8], cached._frozen.imagenet_logits[:8]
    with torch.no_grad():
        live = cached.guidance.teacher(x).imagenet_logits
    torch.testing.assert_close(logits, live, rtol=1e-4, atol=1e-4)
    cached.reset(0)
    stats = cached.train_window([0.0] * (cached.num_groups - 1) + [1.0])
    assert stats.teacher_seconds == 0.0  # the teacher did not run
    assert 0.0 <= stats.guidance_loss < 1e-6  # the frozen backbone: student = teacher


def test_anneal_tail_scales_every_rate_in_the_last_windows():
    run = FinetuneRun(preset("tiny", windows=3, anneal_windows=1, anneal_factor=0.1))
    run.reset(0)
    rates = []
    for _ in range(3):
        run.train_window([1.0] * run.num_groups)
        rates.append(run.optimizer.param_groups[0]["lr"])
    assert rates[0] == rates[1] == pytest.approx(run.cfg.base_lr)
    assert rates[2] == pytest.approx(0.1 * run.cfg.base_lr)
    assert run.multipliers() == [1.0] * run.num_groups  # the controller's choice is unchanged


def test_log_levels_span_three_decades_and_linear_is_asgs():
    log, linear = actions.levels_of("log"), actions.levels_of("linear")
    assert log[0] == 0 and log[1] == pytest.approx(1e-3) and log[-1] == 1.0
    assert np.allclose(linear, np.linspace(0, 1, 11)) and len(log) == len(linear)
    for levels in (log, linear):
        idx = actions.from_multipliers("multidiscrete", levels, levels)
        assert np.array_equal(idx, np.arange(len(levels)))  # every level maps to itself
    # nearest in log space: 0.0015 is closer to 0.002 than to 0.001 in ratio terms
    assert actions.from_multipliers("multidiscrete", [0.0015, 0.0003], log).tolist() == [2, 0]


def test_env_uses_the_configs_levels():
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(preset="tiny", rate_levels="log")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.full(env.run.num_groups, 1))
    assert set(info["multipliers"].values()) == {0.001}


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"head_init": "probe", "head_hidden": 512}, "--head-init probe"),
        ({"head_init": "probe", "dataset": "visda"}, "--head-init probe"),
        ({"head_init": "lbfgs"}, "--head-init"),
        ({"rate_levels": "cubic"}, "--rate-levels"),
        ({"anneal_windows": 9}, "--anneal-windows"),
    ],
)
def test_bad_lever_settings_are_one_line_config_errors(overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        preset("tiny", **overrides)


def test_a_reused_env_runs_the_same_run_as_a_fresh_one():
    """Workers and Tune actors keep one env for many seeds: a run must not depend on what the
    env ran before it."""
    from controllers.baselines import FixedPolicy
    from controllers.rollout import run_episode
    from envs.syn_to_real import SynToRealEnv

    def run(env, seed, mult):
        policy = FixedPolicy([mult] * env.run.num_groups, env.action_encoding, env.levels)
        return run_episode(env, policy, seed, "m")

    cfg = dict(preset="tiny", head_init="probe", anneal_windows=1)
    reused = SynToRealEnv(**cfg)
    run(reused, 3, 1.0)  # a different run first: another seed, the largest rate
    again = run(reused, 7, 0.1)
    fresh = run(SynToRealEnv(**cfg), 7, 0.1)
    assert again.test_acc == fresh.test_acc and again.proxy_acc == fresh.proxy_acc
    assert again.episode_return == fresh.episode_return


def test_weight_averaging_ends_the_run_at_the_mean_of_the_averaged_windows_iterates():
    cfg = preset("tiny", head_init="probe", iters_per_window=1, windows=3)
    last = FinetuneRun(cfg)
    averaged = FinetuneRun(cfg.replace(average_windows=2), splits=last.splits)
    rates = [0.5] * last.num_groups
    last.reset(3)
    iterates = []
    for _ in range(cfg.windows):
        last.train_window(rates)
        iterates.append([p.detach().clone() for p in last.model.parameters()])
    averaged.reset(3)
    for _ in range(cfg.windows):
        averaged.train_window(rates)
    assert averaged.finished
    for p, a, b in zip(averaged.model.parameters(), *iterates[1:], strict=True):
        torch.testing.assert_close(p.detach(), (a + b) / 2)
    head = averaged.model.task_head.weight
    assert not torch.equal(head, last.model.task_head.weight)  # not the last iterate


def test_weight_averaging_is_checked_against_the_run_length():
    with pytest.raises(ConfigError, match="--average-windows"):
        preset("tiny", average_windows=4)
    with pytest.raises(ConfigError, match="--average-windows"):
        preset("tiny", average_windows=1, bn_mode="train")
