"""How well each proxy split ranks the in-range runs of a reward-candidates study by real accuracy.

Pools the runs whose real accuracy is above --floor (the runs a controller has to choose
between, past the cliff's wrecked ones) and prints each proxy's Spearman rho with real accuracy
(`experiments.report.proxy_correlations`), with a bootstrap 95% interval over runs.

    python tools/in_range_rho.py results/reward_candidates_b48/reward_candidates.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from experiments.lib.recorded_runs import read_recorded
from experiments.report import proxy_correlations
from trainables.entry import parse_args, run_main, script_doc
from trainables.errors import ConfigError


@dataclass(frozen=True)
class Args:
    results: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="RESULTS_JSON")]]
    """A reward_candidates.json."""
    floor: float = 0.6
    """Real accuracy above which a run counts as in range."""
    draws: int = 2000
    """Bootstrap draws."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, None, script_doc(__doc__))
    recorded = read_recorded(Path(args.results), args.results, "a reward_candidates.json")
    runs = [r for r in recorded.runs if r.test_acc > args.floor]
    if len(runs) < 3:
        raise ConfigError(f"{args.results}: {len(runs)} runs above --floor {args.floor:g}; need 3")
    rng = np.random.default_rng(0)
    draws = [
        proxy_correlations([runs[i] for i in idx])
        for idx in rng.integers(0, len(runs), (args.draws, len(runs)))
    ]
    print(f"{len(runs)} runs with real accuracy above {args.floor:g}")
    for k, c in enumerate(proxy_correlations(runs)):
        lo, hi = np.nanpercentile([d[k].spearman_vs_real for d in draws], [2.5, 97.5])
        print(f"{c.proxy}: rho {c.spearman_vs_real:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    return 0


if __name__ == "__main__":
    run_main(main)
