"""Does each named RLlib algorithm learn anything? On the stand-in `doubles.BestRateEnv` (the env's
spaces, a known best action: multiplier 0.2 on every group) each algorithm, with the project's
own config builder, must bring its greedy policy near the best action within a bounded budget.
The untrained greedy policy is checked to be far from it, so the test can fail."""

import numpy as np
import pytest
from doubles import BestRateEnv, standin_env

from controllers.algorithms import Resources, action_encoding_for, build_algo_config
from controllers.saved_policy import RLModulePolicy
from envs import actions

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]

GROUPS, WINDOWS, TARGET = 3, 4, 0.2
BUDGET = 60  # training iterations of 16 episodes (64 windows) each, at most
SHORT_BUDGET = 20  # for the algorithms known not to learn it: enough to show no progress


def greedy_error(algo, name: str) -> float:
    """Mean |multiplier - target| of the greedy policy over one episode of the stand-in."""
    encoding = action_encoding_for(name)
    policy = RLModulePolicy.from_module(algo.get_module(), encoding, greedy=True)
    env = BestRateEnv(GROUPS, WINDOWS, TARGET, encoding)
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    errors = []
    for _ in range(WINDOWS):
        mult = actions.to_multipliers(encoding, policy.act(obs), GROUPS)
        errors.append(float(np.abs(mult - TARGET).mean()))
        obs, *_ = env.step(actions.from_multipliers(encoding, mult))
    return float(np.mean(errors))


NOT_LEARNING = pytest.mark.xfail(
    strict=True,  # the day it learns, this fails and the finding in docs/results.md must change
    reason="an open finding: with the project's config it does not find the best rate of the "
    "stand-in (60 iterations measured once; 20 here), see docs/results.md",
)


@pytest.mark.parametrize(
    "name",
    [
        "PPO",
        "DQN",
        pytest.param("APPO", marks=NOT_LEARNING),
        pytest.param("IMPALA", marks=NOT_LEARNING),
        pytest.param("SAC", marks=NOT_LEARNING),
    ],
)
def test_algorithm_finds_the_best_rate_on_the_stand_in(name, request):
    known_not_to = request.node.get_closest_marker("xfail") is not None
    budget = SHORT_BUDGET if known_not_to else BUDGET
    config = build_algo_config(
        name,
        {"num_groups": GROUPS, "windows": WINDOWS, "target": TARGET},
        windows_per_episode=WINDOWS,
        resources=Resources(num_env_runners=0),
        episodes_per_iteration=16,
        env_creator=standin_env,
    )
    algo = config.build_algo()
    try:
        untrained = greedy_error(algo, name)
        for iteration in range(1, budget + 1):  # noqa: B007 (reported below)
            algo.train()
            trained = greedy_error(algo, name)
            if trained <= 0.05:
                break
    finally:
        algo.stop()
    print(f"{name}: greedy error {untrained:.3f} -> {trained:.3f} in {iteration} iterations")
    assert untrained > 0.05, "the untrained policy is already near the best action"
    assert trained <= 0.05, f"{name} did not find the best rate in {budget} iterations"
