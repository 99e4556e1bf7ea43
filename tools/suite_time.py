"""The test suite's wall time at two revisions, measured in one run on this machine.

Runs `python3 -m pytest -q` (the README's test command) at BEFORE and AFTER in the order after,
before, before, after for each pair (ABBA: a machine whose speed drifts linearly during a pair
slows both sides alike), and prints each run's wall time and busy CPU-seconds and, per pair,
AFTER's wall time as a fraction of BEFORE's. It checks revisions out in place, so run it in a
throwaway clone with the project installed, never in a working tree with changes:

    ../shared/tools/fresh-clone -- python3 tools/suite_time.py --before e3564d2 --after HEAD

Each run's pytest output goes to --log-dir. Nothing else should run on the machine meanwhile;
and revisions before the test suite's rework (e3564d2 among them) ran `ray stop --force`,
which stops every Ray on the machine, so never beside a Ray you need.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trainables.entry import parse_args, run_main, script_doc
from trainables.errors import ConfigError


@dataclass(frozen=True)
class Args:
    before: str
    """Revision measured as the reference."""
    after: str = "HEAD"
    """Revision compared with it."""
    pairs: int = 1
    """ABBA pairs (4 suite runs each)."""
    log_dir: Path = Path("/tmp/suite_time")
    """Where each run's pytest output goes."""


def busy_cpu_seconds() -> float:
    """All CPUs' non-idle time since boot (user, nice, system, irq, softirq), in seconds."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / 100


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def run_suite(rev: str, log: Path) -> tuple[float, float, str]:
    """(wall s, busy CPU-s, pytest's last line) of the suite at `rev`."""
    git("checkout", "-q", rev)
    cpu0, t0 = busy_cpu_seconds(), time.perf_counter()
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "pytest", "-q"], stdout=out, stderr=subprocess.STDOUT)
    wall, cpu = time.perf_counter() - t0, busy_cpu_seconds() - cpu0
    lines = log.read_text().strip().splitlines()
    return wall, cpu, lines[-1] if lines else "(no output)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, None, script_doc(__doc__))
    if git("status", "--porcelain", "--untracked-files=no").strip():
        raise ConfigError("the checkout has changes: run this in a throwaway clone")
    if args.pairs < 1:
        raise ConfigError(f"--pairs must be >= 1, got {args.pairs}")
    start = git("rev-parse", "HEAD").strip()
    revs = {}
    for name, rev in (("before", args.before), ("after", args.after)):
        try:
            revs[name] = git("rev-parse", "--short", f"{rev}^{{commit}}").strip()
        except subprocess.CalledProcessError:
            raise ConfigError(f"--{name} {rev}: not a revision of this repository") from None
    args.log_dir.mkdir(parents=True, exist_ok=True)
    fractions = []
    try:
        for pair in range(1, args.pairs + 1):
            walls: dict[str, list[float]] = {"before": [], "after": []}
            for i, name in enumerate(("after", "before", "before", "after"), 1):
                log = args.log_dir / f"pair{pair}-run{i}-{name}-{revs[name]}.log"
                wall, cpu, last = run_suite(revs[name], log)
                walls[name].append(wall)
                print(f"pair {pair} run {i}: {name} {revs[name]}: {wall:.1f} s wall, "
                      f"{cpu:.0f} busy CPU-s; {last}", flush=True)  # fmt: skip
            fraction = statistics.mean(walls["after"]) / statistics.mean(walls["before"])
            fractions.append(fraction)
            print(f"pair {pair}: after / before wall time = {fraction:.3f}", flush=True)
    finally:
        git("checkout", "-q", start)
    print(f"after / before over {len(fractions)} pair(s): "
          + ", ".join(f"{f:.3f}" for f in fractions))  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
