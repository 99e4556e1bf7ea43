"""How well each proxy split ranks the in-range runs of a reward-candidates study by real accuracy.

    python tools/in_range_rho.py results/reward_candidates_b48/reward_candidates.json

Pools the runs whose real accuracy is above --floor (the runs a controller has to choose
between, past the cliff's wrecked ones) and prints each proxy's Spearman rho with real accuracy,
with a bootstrap 95% interval over runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a reward_candidates.json")
    parser.add_argument(
        "--floor", type=float, default=0.6, help="real accuracy above which a run counts"
    )
    parser.add_argument("--draws", type=int, default=2000, help="bootstrap draws")
    args = parser.parse_args()
    try:
        recorded = json.loads(Path(args.results).read_text())["runs"]
        runs = [r for r in recorded if r["test_acc"] > args.floor]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{args.results}: not a reward_candidates.json ({type(e).__name__}: {e})")
    if len(runs) < 3:
        sys.exit(f"{args.results}: {len(runs)} runs above --floor {args.floor:g}; need 3")
    real = np.array([r["test_acc"] for r in runs])
    rng = np.random.default_rng(0)
    print(f"{len(runs)} runs with real accuracy above {args.floor:g}")
    for proxy in runs[0]["proxy_accs"]:
        x = np.array([r["proxy_accs"][proxy] for r in runs])
        draws = [
            spearmanr(x[i], real[i]).statistic
            for i in rng.integers(0, len(x), (args.draws, len(x)))
        ]
        lo, hi = np.nanpercentile(draws, [2.5, 97.5])
        print(f"{proxy}: rho {spearmanr(x, real).statistic:+.2f} [{lo:+.2f}, {hi:+.2f}]")


if __name__ == "__main__":
    main()
