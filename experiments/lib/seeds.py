"""Evaluation seeds: each script draws from a range of its own, disjoint from the small
integers RLlib seeds meta-training's env runners with and from the other scripts' ranges. The
learning curve evaluates on the ablation's, so that its points pair with an ablation.json."""

PIPELINE = 10_000
"""experiments/asg_visda.py: the learned policy and the baselines."""
ABLATION = 20_000
"""experiments/ablation.py, and experiments/learning_curve.py's snapshots."""
REWARD_CANDIDATES = 30_000
"""experiments/reward_candidates.py's spread of schedules."""


def evaluation_seeds(base: int, count: int) -> list[int]:
    """The first `count` seeds of the range that starts at `base`."""
    return [base + i for i in range(count)]
