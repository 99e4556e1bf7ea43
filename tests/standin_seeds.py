"""Iterations each algorithm needs to find the noisy stand-in's best rate, on several seeds.

tests/test_rllib_learns.py runs one seed per algorithm; this runs the same loop (16 episodes per
iteration, greedy regret at most 0.02) on seeds 0..N-1, with the project's settings or with
`--algo-config`-style overrides, so that a settings change is judged on more than one seed
(it lives beside the test doubles it uses):

    python tests/standin_seeds.py PPO
    python tests/standin_seeds.py PPO 'lr=3e-4,num_epochs=4,entropy_coeff=0.01,use_kl_loss=True'
"""

from __future__ import annotations

import sys

import ray
from doubles import noisy_standin_env  # beside this script, as Python runs it from tests/
from test_rllib_learns import EPISODES, GROUPS, NEAR, WINDOWS, train_until_near

from controllers.algorithms import Resources, build_algo_config, parse_training_settings


def main(algo: str = "PPO", overrides: str = "", seeds: int = 6, most: int = 40) -> int:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    training = parse_training_settings(algo, overrides)
    for seed in range(seeds):
        config = build_algo_config(
            algo, {"num_groups": GROUPS, "windows": WINDOWS}, windows_per_episode=WINDOWS,
            resources=Resources(num_env_runners=0), episodes_per_iteration=EPISODES, seed=seed,
            env_creator=noisy_standin_env, training=training,
        )  # fmt: skip
        trainer = config.build_algo()
        try:
            before, after, iteration, _ = train_until_near(trainer, algo, most)
        finally:
            trainer.stop()
        found = f"in {iteration} iterations" if after <= NEAR else f"not in {most}"
        print(f"{algo} seed {seed}: greedy regret {before:.3f} -> {after:.3f}, {found}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
