"""The reward candidates' own settings (experiments/reward_candidates.py) and the spread of
schedules they define: uniform multipliers from small to large, head only, hand-tuned and
random per-group schedules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controllers.spec import ControllerSpec


@dataclass(frozen=True)
class RewardConfig:
    seeds: int = 3
    """Seeds; every schedule runs on each."""
    uniform: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5)
    """Uniform multipliers of the 1-D part of the spread, space-separated (the older
    comma-separated form is read too)."""
    random_schedules: int = 3
    """Random per-group schedules (distinct random streams)."""
    bootstrap: int = 2000
    """Bootstrap resamples of the schedules for the 95% intervals."""

    def schedules(self) -> list[ControllerSpec]:
        """The spread: the uniform schedules, head only, hand-tuned and the random ones."""
        from controllers.spec import ControllerSpec, baseline, uniform

        specs = [uniform(m) for m in self.uniform]
        specs += [
            ControllerSpec("head only", "baseline", backbone_head=(0.0, 1.0)),
            baseline("hand_tuned"),
        ]
        specs += [
            ControllerSpec(f"random {i}", "baseline", random=True, stream=i)
            for i in range(self.random_schedules)
        ]
        return specs
