"""Evaluation seeds: each script draws from a range of its own, disjoint from the small
integers RLlib seeds meta-training's env runners with and from the other scripts' ranges. The
learning curve evaluates on the ablation's, so that its points pair with an ablation.json."""

PIPELINE = 10_000
"""experiments/asg_visda.py: the learned policy and the baselines."""
ABLATION = 20_000
"""experiments/ablation.py, and experiments/learning_curve.py's snapshots."""
REWARD_CANDIDATES = 30_000
"""experiments/reward_candidates.py's spread of schedules."""
EQUAL_COMPUTE = 40_000
"""experiments/equal_compute.py: the deployed winners of its search and the learned policy."""
META_TRAINING = 0
"""The small integers meta-training's env runners are seeded from (RLlib's config seed, 0 by
default, and up): experiments/equal_compute.py's search spends its budget there, as
meta-training does, never on an evaluation range."""


def evaluation_seeds(base: int, count: int) -> list[int]:
    """The first `count` seeds of the range that starts at `base`."""
    return [base + i for i in range(count)]
