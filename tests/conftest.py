import os

import pytest

# Two cores on CI: keep torch from oversubscribing when Ray workers run beside the tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_env():
    """One tiny-preset env shared by tests that only read from it (building costs seconds)."""
    import gymnasium as gym

    import envs  # noqa: F401  registers ASG/SynToReal-v0

    env = gym.make("ASG/SynToReal-v0", preset="tiny")
    yield env
    env.close()
