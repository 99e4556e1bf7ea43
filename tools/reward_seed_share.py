"""How much of the meta-training reward's noise could a per-seed baseline remove?

Grouped-seed advantages (several episodes on one run seed, each baselined against the group's
mean) cancel only the part of the return that the seed shares across action sequences. This
reads a power study's runs (static schedules x paired seeds), keeps the schedules whose runs
did not fall off the cliff, and splits the variance of the episode return (the proxy gain the
controller is rewarded with) into a seed effect and a residual with a two-way analysis of
variance. The seed's share bounds what any per-seed control variate can take out of the
return's variance.

    python tools/reward_seed_share.py results/benchmark_landscape/runs.jsonl
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from controllers.paired_stats import complete_table, two_way


def main(path: str, floor: float = 0.0) -> int:
    by_seed: dict[str, dict[int, float]] = defaultdict(dict)
    for line in Path(path).read_text().splitlines():
        run = json.loads(line)
        by_seed[run["schedule"]][run["seed"]] = run["episode_return"]
    # In range: every run of the schedule gained on the proxy (the cliff's runs lose 0.6).
    kept = sorted(s for s, runs in by_seed.items() if min(runs.values()) > floor)
    table, seeds = complete_table(by_seed, kept)
    anova = two_way(table)
    share = anova.seed_sd**2 / (anova.seed_sd**2 + anova.residual_sd**2)
    print(f"{path}: {len(kept)} in-range schedules x {len(seeds)} seeds; episode return")
    print(f"  mean {table.mean():.4f}, seed sd {anova.seed_sd:.4f}, residual sd "
          f"{anova.residual_sd:.4f}, schedule sd {anova.schedule_sd:.4f}")  # fmt: skip
    print(f"  the seed's share of a run's return variance: {share:.1%}")
    print(f"  a perfect per-seed baseline leaves sd x {math.sqrt(1 - share):.3f} of the noise")
    print(f"  schedules: {', '.join(kept)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
