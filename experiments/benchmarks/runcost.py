"""What a whole run costs over its SGD: whole fine-tuning runs of a preset in one worker process,
as the power study runs them, their wall time (the worker's env build included) over the time
of their SGD windows."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEDULE = "backbone:0.1,head:1"  # the hand-tuned schedule


@dataclass(frozen=True)
class RunCost:
    runs: int
    wall_over_sgd: float
    """(env build + every run's wall seconds) / every run's SGD-window seconds."""
    build_s: float
    """The worker's env builds, summed over the runs' records."""
    run_s: list[float]
    sgd_s: list[float]

    def to_json(self) -> dict:
        return asdict(self)


def run_cost(preset_name: str, runs: int) -> RunCost:
    """`runs` whole runs of the preset (the hand-tuned schedule, seeds 0 to runs - 1) in one
    worker process, in a temporary folder."""
    from controllers.static_study import Variant, cost_ratio, run_study
    from trainables.config import preset

    with tempfile.TemporaryDirectory() as d:
        finished = run_study(
            [Variant(preset_name, preset(preset_name))],
            [SCHEDULE],
            list(range(runs)),
            Path(d) / "runs.jsonl",
            workers=1,
        )
    return RunCost(
        runs=len(finished),
        wall_over_sgd=cost_ratio(finished),
        build_s=sum(r.build_s for r in finished),
        run_s=[r.run_s for r in finished],
        sgd_s=[r.sgd_s for r in finished],
    )
