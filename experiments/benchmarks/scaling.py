"""Meta-training throughput as env runners are added: PPO iterations with the fewest runners
against n runners, interleaved, in seconds per episode sampled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from experiments.benchmarks.ray_session import private_ray
from experiments.benchmarks.timing import Interleaved, interleaved, repeated, timed_call


@dataclass(frozen=True)
class ScalingRow:
    env_runners: int
    episodes_per_min: float
    """From the median seconds per episode."""
    speedup: Interleaved | None
    """Per pair: seconds per episode with the fewest runners / with this many (None for the
    reference row itself)."""
    efficiency: float
    """Median speed-up / (runners / the fewest runners)."""

    def to_json(self, reference_runners: int) -> dict:
        """`reference_runners`: the fewest runners, the A side of the speed-up."""
        return {
            "env_runners": self.env_runners,
            "episodes_per_min": self.episodes_per_min,
            "efficiency": self.efficiency,
            "speedup": None
            if self.speedup is None
            else self.speedup.to_json(
                a=f"{reference_runners} runner(s)",
                b=f"{self.env_runners} runners",
                ratio="A seconds per episode / B seconds per episode = speed-up",
            ),
        }


def scaling(
    preset_name: str, runners: list[int], pairs: int, address: str | None = None
) -> list[ScalingRow]:
    """PPO iterations with the fewest env runners (A) against n runners (B), interleaved: one
    algorithm per runner count, all alive in one Ray instance, only one sampling at a time.
    A measurement is one training iteration, in seconds per episode sampled."""
    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    windows = PRESETS[preset_name].windows
    counts = sorted(set(runners))
    # Every algorithm's runners stay alive, but only one algorithm samples at a time: declare
    # a logical CPU for each runner, and one for the driver, whatever the cores.
    with private_ray(workers=sum(counts), num_cpus=max(sum(counts) + 1, 2), address=address):
        algos = {
            n: build_algo_config(
                "PPO",
                {"preset": preset_name, "report_test": False},
                windows,
                Resources(num_env_runners=n),
                episodes_per_iteration=n,
            ).build_algo()
            for n in counts
        }
        lifetime = dict.fromkeys(counts, 0)

        def seconds_per_episode(n: int) -> Callable[[], float]:
            def measure() -> float:
                r, seconds = timed_call(algos[n].train)
                total = r["env_runners"]["num_episodes_lifetime"]
                episodes, lifetime[n] = total - lifetime[n], total
                return seconds / max(episodes, 1)

            return measure

        base = counts[0]
        rows = [ScalingRow(base, 60 / repeated(seconds_per_episode(base), pairs), None, 1.0)]
        for n in counts[1:]:
            s = interleaved(seconds_per_episode(base), seconds_per_episode(n), pairs)
            rows.append(ScalingRow(n, 60 / s.b_median_s, s, s.median_ratio * base / n))
        for algo in algos.values():
            algo.stop()
    return rows
