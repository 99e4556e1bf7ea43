"""Where the test suite's CPU time goes, by kind of process or by test file.

By default runs the README's test command while sampling every process started on the machine
meanwhile, and prints their CPU-seconds summed by kind (pytest workers, drivers, Ray's env
runners, trial and algorithm actors, Ray's own processes). With --per-file it runs each test
file alone, one after the other, and prints each one's wall time and the machine's busy
CPU-seconds:

    python3 tools/suite_cpu.py             # about 6 minutes on 2 cores
    python3 tools/suite_cpu.py --per-file  # about 12 minutes

Run it on a quiet machine. A process that lives less than one sampling interval is missed, and
one sampled only after it exited counts under the kind it had when last seen alive.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil
from suite_time import busy_cpu_seconds

from trainables.entry import parse_args, run_main, script_doc
from trainables.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Args:
    per_file: bool = False
    """Run each tests/test_*.py alone instead of the whole suite by process kind."""
    interval: float = 0.3
    """Seconds between two samples of the process table."""


def kind(cmdline: list[str]) -> str:
    """What a process is, from its command line."""
    text = " ".join(cmdline)
    if text.startswith("ray::"):
        return text.split()[0].split(".")[0]  # ray::PPO.train -> ray::PPO
    if "exec(eval(sys.stdin" in text:
        return "pytest-xdist worker"
    if cmdline[1:3] == ["-m", "pytest"]:
        return "pytest"
    program = next((a for a in cmdline[1:] if a.endswith(".py")), cmdline[0])
    if "/experiments/" in program:
        return f"driver {Path(program).name}"
    if "/ray/" in program:  # Ray's own services: gcs_server, raylet, dashboard, agents
        return f"Ray {Path(program).name}"
    return Path(program).name


class Sampler:
    """CPU-seconds of every process started after it, by kind, sampled in a thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        # Processes running before it, by (pid, start time): psutil's start times come from the
        # boot time in whole seconds, so they cannot be compared with time.time().
        self._before = {
            (p.info["pid"], p.info["create_time"])
            for p in psutil.process_iter(["pid", "create_time"])
        }
        self.seen: dict[tuple[int, float], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for p in psutil.process_iter(["pid", "create_time", "cmdline", "cpu_times"]):
                info = p.info
                if not info["cmdline"] or info["cpu_times"] is None:
                    continue  # exited (a zombie has no command line), or not ours to read
                key = (info["pid"], info["create_time"])
                if key in self._before:
                    continue
                cpu = info["cpu_times"].user + info["cpu_times"].system
                self.seen[key] = (kind(info["cmdline"]), cpu)

    def by_kind(self) -> list[tuple[str, float, int]]:
        """(kind, CPU-seconds, processes), most CPU first."""
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        for name, cpu in self.seen.values():
            totals[name][0] += cpu
            totals[name][1] += 1
        rows = [(name, cpu, int(n)) for name, (cpu, n) in totals.items()]
        return sorted(rows, key=lambda r: -r[1])


def pytest(*args: str) -> tuple[float, float, str]:
    """(wall s, busy CPU-s of the machine, pytest's summary) of one pytest run: its last line,
    after the lines naming any failed test."""
    cpu0, t0 = busy_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.perf_counter() - t0, busy_cpu_seconds() - cpu0
    lines = proc.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith("FAILED ")]
    return wall, cpu, "; ".join([*failed, lines[-1] if lines else "(no output)"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, None, script_doc(__doc__))
    if args.interval <= 0:
        raise ConfigError(f"--interval must be > 0, got {args.interval}")
    if args.per_file:
        print("| test file | wall s | busy CPU-s | pytest |\n|---|---|---|---|", flush=True)
        for path in sorted((ROOT / "tests").glob("test_*.py")):
            wall, cpu, last = pytest("-n", "0", str(path.relative_to(ROOT)))
            print(f"| {path.name} | {wall:.1f} | {cpu:.1f} | {last} |", flush=True)
        return 0
    with Sampler(args.interval) as sampler:
        wall, cpu, last = pytest()
    print(f"suite: {wall:.1f} s wall, {cpu:.0f} busy CPU-s; {last}\n")
    rows = sampler.by_kind()
    print("| process kind | CPU-s | processes |\n|---|---|---|")
    for name, secs, n in rows:
        print(f"| {name} | {secs:.1f} | {n} |")
    print(f"| (all sampled) | {sum(r[1] for r in rows):.1f} | {sum(r[2] for r in rows)} |")
    return 0


if __name__ == "__main__":
    run_main(main)
