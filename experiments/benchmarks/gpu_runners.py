"""Env runners sharing one GPU: n Ray actors, each its own FinetuneRun with 1/n of the GPU; one
runner's window alone against all n runners' windows at once, interleaved."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from experiments.benchmarks.loops import LR_MULTIPLIER
from experiments.benchmarks.ray_session import private_ray
from experiments.benchmarks.timing import Interleaved, interleaved, repeated, sync
from trainables.config import FinetuneConfig


@dataclass(frozen=True)
class RunnersRow:
    """n runners, each its own FinetuneRun in a Ray actor, sharing one GPU (1/n each)."""

    runners: int
    images_per_s: float
    """Aggregate: images of all runners / the span from the first start to the last end."""
    speedup: Interleaved | None
    """Per pair: seconds per image of one runner alone / of all n together (None for n=1)."""

    def to_json(self) -> dict:
        return {
            "runners": self.runners,
            "images_per_s": self.images_per_s,
            "speedup_vs_1_runner": None
            if self.speedup is None
            else self.speedup.to_json(
                a="1 runner alone",
                b=f"{self.runners} runners at once",
                ratio="A seconds per image / B seconds per image = speed-up",
            ),
        }


class WindowRunner:
    """A Ray actor: one FinetuneRun that trains one window per `window()` call."""

    def __init__(self, cfg: FinetuneConfig) -> None:
        from trainables.finetune import FinetuneRun

        self.run = FinetuneRun(cfg)
        self.run.reset(0)

    def window(self) -> tuple[float, float, int]:
        """(start, end, images) of one window, by the machine's clock (shared by all actors)."""
        start = time.time()
        stats = self.run.train_window([LR_MULTIPLIER] * self.run.num_groups)
        sync(self.run.device)
        return start, time.time(), stats.images


def gpu_share(n: int) -> float:
    """1/n of a GPU, rounded down to Ray's resolution of 1e-4."""
    return math.floor(10_000 / n) / 10_000


def shared_gpu_runners(cfg: FinetuneConfig, counts: list[int], pairs: int) -> list[RunnersRow]:
    """For each n: n Ray actors with 1/n GPU each (0 on the CPU), each a FinetuneRun; one
    runner's window alone (A) against all n runners' windows at once (B), interleaved, in
    seconds per image. Every actor gets the same CPUs (the machine's cores / the largest n), so
    that only the GPU is shared differently."""
    import ray

    cuda = cfg.device == "cuda"
    cores = os.cpu_count() or 1
    most = max(counts)
    cpus_each = max(1, cores // most)
    rows = []
    with private_ray(
        workers=most,
        num_cpus=max(cores, cpus_each * most),
        cpus_per_worker=cpus_each,
        gpus_per_worker=gpu_share(most) if cuda else 0,
        num_gpus=1 if cuda else 0,
        flag="--gpu-runners",
    ):
        for n in counts:
            actor = ray.remote(num_cpus=cpus_each, num_gpus=gpu_share(n) if cuda else 0)(
                WindowRunner
            )
            actors = [actor.remote(cfg) for _ in range(n)]

            def seconds_per_image(group) -> float:
                spans = ray.get([a.window.remote() for a in group])
                images = sum(s[2] for s in spans)
                return (max(s[1] for s in spans) - min(s[0] for s in spans)) / images

            if n == 1:
                median = repeated(lambda actors=actors: seconds_per_image(actors), pairs)
                rows.append(RunnersRow(1, 1 / median, None))
            else:
                s = interleaved(
                    lambda actors=actors: seconds_per_image(actors[:1]),
                    lambda actors=actors: seconds_per_image(actors),
                    pairs,
                )
                rows.append(RunnersRow(n, 1 / s.b_median_s, s))
            for a in actors:
                ray.kill(a)
    return rows
