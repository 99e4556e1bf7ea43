"""Interleaved timing: A against B in pairs A, B, A, B, ... after a discarded warm-up pair, the
median of the per-pair ratios with their min-max spread; one synchronised measurement on a
device (`Timed`); and the description of the machine and device the figures come from."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import torch

SPREAD = "min-max of the per-pair ratios"
WARMUP_PAIRS = 1

T = TypeVar("T")


@dataclass(frozen=True)
class Interleaved:
    """A timed against B in interleaved pairs: per pair the ratio A seconds / B seconds; the
    median of those ratios and their spread (min-max over the pairs, `ratio_lo`-`ratio_hi`),
    and each side's median seconds."""

    median_ratio: float
    ratio_lo: float
    ratio_hi: float
    a_median_s: float
    b_median_s: float
    pairs: int
    ratios: tuple[float, ...]
    a_seconds: tuple[float, ...]
    b_seconds: tuple[float, ...]

    @classmethod
    def from_seconds(cls, a_seconds: Sequence[float], b_seconds: Sequence[float]) -> Interleaved:
        """The statistics of pairs already measured (A and B seconds, pair by pair)."""
        if not a_seconds or len(a_seconds) != len(b_seconds):
            raise ValueError(f"need matching pairs, got {len(a_seconds)} A and {len(b_seconds)} B")
        ratios = tuple(a / b for a, b in zip(a_seconds, b_seconds, strict=True))
        return cls(
            median_ratio=statistics.median(ratios),
            ratio_lo=min(ratios),
            ratio_hi=max(ratios),
            a_median_s=statistics.median(a_seconds),
            b_median_s=statistics.median(b_seconds),
            pairs=len(ratios),
            ratios=ratios,
            a_seconds=tuple(a_seconds),
            b_seconds=tuple(b_seconds),
        )

    def cell(self) -> str:
        """'median x (min-max)' for a table."""
        return f"{self.median_ratio:.3f}x ({self.ratio_lo:.3f}-{self.ratio_hi:.3f})"

    def to_json(self, **labels: str) -> dict:
        """Every field, the spread's definition and what A, B and the ratio are (`labels`)."""
        return {**labels, **asdict(self), "spread": SPREAD}


def interleaved(
    a: Callable[[], float],
    b: Callable[[], float],
    pairs: int = 5,
    warmup: int = WARMUP_PAIRS,
) -> Interleaved:
    """Call A, B, A, B, ...: `warmup` pairs first (discarded), then `pairs` measured pairs.
    Each callable runs one measurement and returns its seconds."""
    if pairs < 1 or warmup < 0:
        raise ValueError(f"need pairs >= 1 and warmup >= 0, got {pairs} and {warmup}")
    for _ in range(warmup):
        a()
        b()
    a_s, b_s = [], []
    for _ in range(pairs):
        a_s.append(a())
        b_s.append(b())
    return Interleaved.from_seconds(a_s, b_s)


def repeated(measure: Callable[[], float], times: int, warmup: int = WARMUP_PAIRS) -> float:
    """Median seconds of `times` measurements after `warmup` discarded ones (no ratio)."""
    for _ in range(warmup):
        measure()
    return statistics.median(measure() for _ in range(times))


def timed_call(work: Callable[[], T]) -> tuple[T, float]:
    """`work()`'s result and its wall seconds (nothing synchronised: for calls that end on the
    host, such as an env step or an RLlib iteration)."""
    t0 = time.perf_counter()
    result = work()
    return result, time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timed:
    """One measurement of `work` (which returns the images it trained on) as wall seconds, the
    device synchronised before and after; keeps the peak device memory over its measurements
    (CUDA only: `torch.cuda.max_memory_allocated`, reset before each measurement)."""

    def __init__(self, work: Callable[[], int], device: torch.device) -> None:
        self.work, self.device = work, device
        self.images = 0
        self.peak_bytes: int | None = 0 if device.type == "cuda" else None

    def __call__(self) -> float:
        cuda = self.device.type == "cuda"
        sync(self.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        self.images = self.work()
        sync(self.device)
        seconds = time.perf_counter() - t0
        if cuda:
            peak = torch.cuda.max_memory_allocated(self.device)
            self.peak_bytes = max(self.peak_bytes or 0, peak)
        return seconds


def device_name(device: torch.device | None = None) -> str:
    """The GPU's name, or 'CPU only' (for `device`, or for this machine when None)."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU only"


def machine() -> str:
    """This machine: its processor, torch's threads and the CPUs."""
    return (
        f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs"
    )


def report_header(command: str, pairs: int) -> dict:
    """What every report starts with: the machine, the device, the command and how ratios were
    measured."""
    return {
        "machine": machine(),
        "device_name": device_name(),
        "command": command,
        "pairs": pairs,
        "warmup_pairs": WARMUP_PAIRS,
        "spread": SPREAD,
    }
