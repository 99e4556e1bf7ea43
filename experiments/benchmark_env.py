"""What the environment costs: env-driven fine-tuning versus a plain PyTorch loop, the price of
proxy-validation, meta-training throughput as env runners are added, training throughput
on a device (a GPU) in ASG's VisDA recipe, and what a whole run costs over its SGD.

How to run:
    python experiments/benchmark_env.py                 # overhead, proxy, scaling: CPU parts
    python experiments/benchmark_env.py --parts overhead,proxy
    python experiments/benchmark_env.py --parts runcost --pairs 4   # 4 whole runs: wall / SGD
    python experiments/benchmark_env.py --parts device --device cuda --output device.json
    python experiments/benchmark_env.py --parts device --device cuda --compile  # minutes more
    python experiments/benchmark_env.py --parts device --device cpu --models resnet50 \
        --image-size 32 --batch-size 4 --iters 2 --pairs 2 --tree-images-per-class 2 \
        --gpu-runners ''                                 # CPU smoke run of the device part

The device part needs no data and no download: it writes a small VisDA-layout tree of
generated images and a ResNet weights file of random values into a temporary folder.

Every ratio comes from interleaved repeats, A, B, A, B, ...: one warm-up pair first (not
counted), then `--pairs` pairs; the ratio printed is the median of the per-pair ratios, with
their spread as min-max over the pairs, beside each side's median seconds. On a shared machine
a slow stretch then hits both sides of a pair, instead of one side of a single comparison.
Figures that are not ratios of interleaved pairs say "single measurement". Tables are markdown;
`--output` also writes every measurement as JSON. Timings are wall-clock on whatever machine
runs this; on CUDA the device is synchronised before a clock is read.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainables.cli import OneLineErrorParser, run_main
from trainables.config import FinetuneConfig, preset
from trainables.models.resnet import RESNETS, random_weights_file

PARTS = ("overhead", "proxy", "scaling", "device", "runcost")
DEVICE_MODELS = RESNETS
SPREAD = "min-max of the per-pair ratios"
LR_MULTIPLIER = 0.1  # every group's rate in the timed windows (env action index 1)
WARMUP_PAIRS = 1


# --- Interleaved timing ---------------------------------------------------------------------


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device | None = None) -> str:
    """The GPU's name, or 'CPU only' (for `device`, or for this machine when None)."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU only"


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


@contextlib.contextmanager
def local_ray(num_cpus: int, num_gpus: int = 0) -> Iterator[None]:
    """A Ray instance of this process's own, in its own temp folder (removed afterwards)."""
    import ray

    folder = tempfile.mkdtemp(prefix="asgbench", dir="/tmp")  # short: Ray's socket paths
    ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=folder,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


# --- Training loops ---------------------------------------------------------------------------


class PlainLoop:
    """A bare PyTorch loop doing the env's work: the same model (a copy), data (its own
    persistent DataLoader of the same kind over the same training split), SGD settings, KL
    guidance against the same frozen teacher, BatchNorm mode (frozen: eval mode, as the env)
    and precision (autocast dtype, channels_last). Nothing waits for the device inside the
    loop. What it lacks: windows, per-group rates, the schedule, stage timers, loss sums."""

    def __init__(self, run, seed: int = 0) -> None:
        from trainables.engine import infinite_batches
        from trainables.errors import ConfigError
        from trainables.finetune import make_loader

        cfg, guidance = run.cfg, run.guidance
        if guidance.active and guidance.kind != "kl":
            raise ConfigError(f"the plain loop implements KL guidance only, not {guidance.kind}")
        self.cfg, self.device, self.precision = cfg, run.device, run.precision
        self.teacher = guidance.teacher if guidance.active else None
        self.model = copy.deepcopy(run.model)
        self.optimizer = torch.optim.SGD(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.base_lr * LR_MULTIPLIER,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        train = run.splits.train
        self.loader = make_loader(
            train,
            cfg,
            cfg.batch_size,
            shuffle=True,
            drop_last=len(train) >= cfg.batch_size,
            generator=torch.Generator().manual_seed(seed),
        )
        self.batches = infinite_batches(self.loader)

    def __call__(self, iters: int) -> int:
        """Train `iters` iterations; returns the images seen."""
        model, teacher, p, w = self.model, self.teacher, self.precision, self.cfg.guidance_weight
        model.train(self.cfg.bn_mode == "train")
        images = 0
        for _ in range(iters):
            x, y = next(self.batches)
            x, y = p.inputs(x, self.device), y.to(self.device, non_blocking=True)
            with p.autocast():
                loss = task_and_kl_loss(model, teacher, x, y, w)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            images += len(y)
        return images


def task_and_kl_loss(model, teacher, x: torch.Tensor, y: torch.Tensor, weight: float):
    """Cross-entropy on the task head, plus `weight` x KL(teacher || model) on the ImageNet head
    when there is a teacher: the env's loss, written out plainly."""
    out = model(x)
    loss = F.cross_entropy(out.task_logits.float(), y)
    if teacher is None:
        return loss
    with torch.no_grad():
        t = teacher(x).imagenet_logits.float()
    kl = F.kl_div(
        out.imagenet_logits.float().log_softmax(1),
        t.log_softmax(1),
        reduction="batchmean",
        log_target=True,
    )
    return loss + weight * kl


class BestLoop:
    """The fastest ResNet training loop this script knows for the device, doing the same
    arithmetic as the plain loop (task cross-entropy + KL to the frozen teacher, frozen
    BatchNorm): one fixed random batch already on the device (no data loading), channels_last
    and bf16 autocast on CUDA (the run's precision on the CPU), a fused SGD step, and with
    `compile` the model and teacher under torch.compile."""

    def __init__(self, run, compile: bool = False, seed: int = 0) -> None:
        from trainables.precision import resolve_precision

        cfg, device = run.cfg, run.device
        self.cfg, self.device = cfg, device
        cuda = device.type == "cuda"
        self.precision = resolve_precision("bf16", "on", device) if cuda else run.precision
        self.model = self.precision.prepare(copy.deepcopy(run.model))
        # The run's frozen teacher, shared: on CUDA the run's 'auto' precision already made it
        # channels_last; on the CPU both loops use the run's precision.
        self.teacher = run.guidance.teacher if run.guidance.active else None
        self.optimizer = torch.optim.SGD(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.base_lr * LR_MULTIPLIER,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            fused=True,
        )
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, generator=gen)
        y = torch.randint(0, run.splits.num_classes, (cfg.batch_size,), generator=gen)
        self.x, self.y = self.precision.inputs(x, device), y.to(device)
        self.forward = torch.compile(self.model) if compile else self.model
        self.teacher_forward = (
            torch.compile(self.teacher) if compile and self.teacher is not None else self.teacher
        )

    def __call__(self, iters: int) -> int:
        """Train `iters` iterations on the fixed batch; returns the images seen."""
        x, y, w = self.x, self.y, self.cfg.guidance_weight
        self.model.train(self.cfg.bn_mode == "train")
        for _ in range(iters):
            with self.precision.autocast():
                loss = task_and_kl_loss(self.forward, self.teacher_forward, x, y, w)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return iters * len(y)


# --- Overhead: env windows against the plain loop (CPU, embedded preset) ---------------------


@dataclass(frozen=True)
class EpisodeParts:
    """Wall seconds of one env episode (its steps, not the reset), split into its parts."""

    total_s: float
    train_s: float
    """Wall time inside `run.train_window` (the SGD windows)."""
    teacher_forward_s: float
    """Part of `train_s` in the frozen teacher's forward pass (as the env reports it)."""
    evaluation_s: float
    """Proxy-validation after each window."""
    observation_and_step_s: float
    """Everything else: observation, reward, env bookkeeping."""


class _Stopwatch:
    """Wraps a method of an object so that its calls' wall time is summed in `seconds`."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name, self.seconds = obj, name, 0.0
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(obj, name, timed)

    def remove(self) -> None:
        delattr(self.obj, self.name)  # the class's method shows through again


def env_episode(env, seed: int) -> EpisodeParts:
    """One env-driven episode at multiplier 0.1 everywhere, split into its parts."""
    run = env.run
    env.reset(seed=seed)  # not timed: restores weights, trains the head, first proxy pass
    train, evaluation = _Stopwatch(run, "train_window"), _Stopwatch(run, "evaluate")
    try:
        action = np.full(len(env.group_names), 1, dtype=np.int64)  # multiplier 0.1 everywhere
        teacher = 0.0
        t0 = time.perf_counter()
        done = False
        while not done:
            _, _, term, trunc, info = env.step(action)
            teacher += info["teacher_seconds"]
            done = term or trunc
        sync(run.device)
        total = time.perf_counter() - t0
    finally:
        train.remove()
        evaluation.remove()
    return EpisodeParts(
        total_s=total,
        train_s=train.seconds,
        teacher_forward_s=teacher,
        evaluation_s=evaluation.seconds,
        observation_and_step_s=total - train.seconds - evaluation.seconds,
    )


@dataclass(frozen=True)
class Overhead:
    """Env episodes interleaved with plain loops of the same iterations; medians of parts."""

    preset: str
    iterations: int
    episode_median_s: dict[str, float]
    plain_loop_median_s: float
    training_vs_plain: Interleaved
    """Per pair: seconds in the env's SGD windows / seconds of the plain loop."""
    step_excl_proxy_vs_plain: Interleaved
    """Per pair: episode seconds less proxy-validation / seconds of the plain loop."""
    total_vs_plain: Interleaved
    """Per pair: episode seconds / seconds of the plain loop."""
    direct_episode_1_thread_s: float
    """Single measurement."""
    rllib: dict[str, float]
    """Single measurements (see rllib_episode)."""

    def to_json(self) -> dict:
        plain = "plain PyTorch loop, same iterations"
        return {
            "preset": self.preset,
            "iterations": self.iterations,
            "episode_median_s": self.episode_median_s,
            "plain_loop_median_s": self.plain_loop_median_s,
            "training_vs_plain": self.training_vs_plain.to_json(
                a="env SGD windows of one episode", b=plain, ratio="A seconds / B seconds"
            ),
            "step_excl_proxy_vs_plain": self.step_excl_proxy_vs_plain.to_json(
                a="env episode less proxy-validation", b=plain, ratio="A seconds / B seconds"
            ),
            "total_vs_plain": self.total_vs_plain.to_json(
                a="env episode", b=plain, ratio="A seconds / B seconds"
            ),
            "direct_episode_1_thread_s": self.direct_episode_1_thread_s,
            "rllib_single_measurement": self.rllib,
        }


def overhead(preset_name: str, pairs: int, seed: int, with_rllib: bool = True) -> Overhead:
    """Env episodes (A) against the plain loop over the same SGD iterations (B), interleaved;
    the training, step and total ratios all come from the same pairs. Then one directly
    stepped 1-thread episode and one RLlib-sampled episode (single measurements)."""
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(preset=preset_name, report_timing=True, report_test=False)
    iters = env.cfg.total_iters
    plain_loop = PlainLoop(env.run)
    plain = Timed(lambda: plain_loop(iters), env.run.device)
    episodes: list[EpisodeParts] = []

    def episode() -> float:
        episodes.append(env_episode(env, seed))
        return episodes[-1].total_s

    total = interleaved(episode, plain, pairs)
    measured = episodes[WARMUP_PAIRS:]
    medians = {
        f.name: statistics.median(getattr(e, f.name) for e in measured)
        for f in dataclasses.fields(EpisodeParts)
    }
    # An env runner is a 1-CPU Ray actor, so torch runs 1 thread there: compare like with like.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        direct = env_episode(env, seed).total_s
    finally:
        torch.set_num_threads(threads)
    return Overhead(
        preset=preset_name,
        iterations=iters,
        episode_median_s=medians,
        plain_loop_median_s=total.b_median_s,
        training_vs_plain=Interleaved.from_seconds([e.train_s for e in measured], total.b_seconds),
        step_excl_proxy_vs_plain=Interleaved.from_seconds(
            [e.total_s - e.evaluation_s for e in measured], total.b_seconds
        ),
        total_vs_plain=total,
        direct_episode_1_thread_s=direct,
        rllib=rllib_episode(preset_name, direct) if with_rllib else {},
    )


def rllib_episode(preset_name: str, direct_episode_s: float) -> dict[str, float]:
    """One env runner sampling whole episodes, against the same episode stepped directly with
    one torch thread. Single measurements: RLlib's episode duration is its own running mean,
    so it cannot be paired measurement by measurement."""
    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    with local_ray(num_cpus=2):
        cfg = build_algo_config(
            "PPO",
            {"preset": preset_name, "report_test": False},
            PRESETS[preset_name].windows,
            Resources(num_env_runners=1),
            1,
        )
        algo = cfg.build_algo()
        algo.train()  # warm-up: runner start, first episode
        t0 = time.perf_counter()
        r = algo.train()
        sample_s = time.perf_counter() - t0
        per_episode = r["env_runners"]["episode_duration_sec_mean"]
        algo.stop()
    return {
        "rllib_episode_s": per_episode,
        "rllib_iteration_s": sample_s,
        "direct_episode_1_thread_s": direct_episode_s,
        "rllib_episode_over_direct": per_episode / direct_episode_s,
    }


# --- Proxy-validation cost ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRow:
    proxy_size: int
    share_of_step: Interleaved
    """Per pair: proxy-validation seconds / seconds of one env step (which includes one)."""


def proxy_cost(preset_name: str, sizes: list[int], pairs: int, seed: int) -> list[ProxyRow]:
    """A proxy-validation pass (A) against one env step (B), interleaved, per proxy size."""
    from envs.syn_to_real import SynToRealEnv

    rows = []
    for size in sizes:
        env = SynToRealEnv(
            preset=preset_name, proxy_size=size, report_timing=True, report_test=False
        )
        action = np.full(len(env.group_names), 1, dtype=np.int64)
        state = {"done": True}

        def step(env=env, action=action, state=state) -> float:
            if state["done"]:
                env.reset(seed=seed)  # not timed
            t0 = time.perf_counter()
            _, _, term, trunc, _ = env.step(action)
            state["done"] = term or trunc
            return time.perf_counter() - t0

        def proxy_eval(env=env) -> float:
            t0 = time.perf_counter()
            env.run.evaluate("proxy")
            return time.perf_counter() - t0

        rows.append(ProxyRow(size, interleaved(proxy_eval, step, pairs)))
    return rows


# --- Meta-training throughput as env runners are added ----------------------------------------


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


def scaling(preset_name: str, runners: list[int], pairs: int) -> list[ScalingRow]:
    """PPO iterations with the fewest env runners (A) against n runners (B), interleaved: one
    algorithm per runner count, all alive in one Ray instance, only one sampling at a time.
    A measurement is one training iteration, in seconds per episode sampled."""
    from controllers.algorithms import Resources, build_algo_config
    from trainables.config import PRESETS

    windows = PRESETS[preset_name].windows
    counts = sorted(set(runners))
    with local_ray(num_cpus=max(sum(counts) + 1, 2)):
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
                t0 = time.perf_counter()
                r = algos[n].train()
                seconds = time.perf_counter() - t0
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


# --- Device throughput: env windows, plain AMP loop, best loop; runners sharing a GPU -------


@dataclass(frozen=True)
class LoopResult:
    """One training loop's throughput on the device."""

    loop: str
    images_per_measurement: int
    median_s: float
    images_per_s: float
    peak_memory_gib: float | None
    """Peak of torch.cuda.max_memory_allocated over its measurements (every model resident on
    the device counts); None on the CPU."""


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


@dataclass(frozen=True)
class ModelThroughput:
    model: str
    env: LoopResult
    plain: LoopResult
    best: LoopResult
    env_vs_plain: Interleaved
    """A = plain loop, B = env windows: the ratio is env images/s / plain images/s."""
    plain_vs_best: Interleaved
    """A = best loop, B = plain loop: the ratio is plain images/s / best images/s."""
    runners: list[RunnersRow]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "loops": {k: asdict(getattr(self, k)) for k in ("env", "plain", "best")},
            "env_vs_plain": self.env_vs_plain.to_json(
                a="plain PyTorch loop",
                b="env SGD windows",
                ratio="A seconds / B seconds = env images/s / plain images/s (goal >= 0.95)",
            ),
            "plain_vs_best": self.plain_vs_best.to_json(
                a="best loop",
                b="plain PyTorch loop",
                ratio="A seconds / B seconds = plain images/s / best images/s (goal >= 0.80)",
            ),
            "gpu_runners": [r.to_json() for r in self.runners],
        }


def device_config(
    model: str, tree: Path, weights: Path, cache: Path, args: argparse.Namespace, device: str
) -> FinetuneConfig:
    """The 'visda' preset (ASG's recipe: frozen BatchNorm, KL guidance, amp and channels_last
    'auto') on the generated tree; one window = `--iters` iterations, no head warm-up."""
    return preset(
        "visda",
        data_root=str(tree),
        num_classes=12,
        model=model,
        weights=str(weights),
        image_size=args.image_size,
        batch_size=args.batch_size,
        iters_per_window=args.iters,
        windows=1_000_000,  # never finished: windows run back to back without a reset
        head_warmup_iters=0,
        image_cache=str(cache),
        device=device,
    )


def _loop_result(name: str, timed: Timed, median_s: float) -> LoopResult:
    peak = None if timed.peak_bytes is None else timed.peak_bytes / 2**30
    return LoopResult(name, timed.images, median_s, timed.images / median_s, peak)


def model_throughput(cfg: FinetuneConfig, args: argparse.Namespace) -> ModelThroughput:
    """For one model: the three loops in this process, then (their memory freed) runners
    sharing the GPU."""
    result = loop_throughput(cfg, args)
    _free(torch.device(cfg.device))
    if args.gpu_runners:
        runners = shared_gpu_runners(cfg, args.gpu_runners, args.pairs)
        result = dataclasses.replace(result, runners=runners)
    return result


def loop_throughput(cfg: FinetuneConfig, args: argparse.Namespace) -> ModelThroughput:
    """Env windows against the plain AMP loop, then the plain loop against the best loop,
    each interleaved, every measurement `--iters` iterations."""
    from trainables.finetune import FinetuneRun

    run = FinetuneRun(cfg)
    run.reset(0)
    multipliers = [LR_MULTIPLIER] * run.num_groups
    env = Timed(lambda: run.train_window(multipliers).images, run.device)
    plain_loop = PlainLoop(run)
    plain = Timed(lambda: plain_loop(args.iters), run.device)
    env_vs_plain = interleaved(plain, env, args.pairs)
    best_loop = BestLoop(run, compile=args.compile)
    best = Timed(lambda: best_loop(args.iters), run.device)
    plain_vs_best = interleaved(best, plain, args.pairs)
    return ModelThroughput(
        model=cfg.model,
        env=_loop_result("env SGD windows", env, env_vs_plain.b_median_s),
        plain=_loop_result("plain PyTorch loop", plain, env_vs_plain.a_median_s),
        best=_loop_result(
            "best loop (batch on device" + (", compiled)" if args.compile else ")"),
            best,
            plain_vs_best.a_median_s,
        ),
        env_vs_plain=env_vs_plain,
        plain_vs_best=plain_vs_best,
        runners=[],
    )


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


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


def shared_gpu_runners(cfg: FinetuneConfig, counts: list[int], pairs: int) -> list[RunnersRow]:
    """For each n: n Ray actors with 1/n GPU each (0 on the CPU), each a FinetuneRun; one
    runner's window alone (A) against all n runners' windows at once (B), interleaved, in
    seconds per image. Every actor gets the same CPUs (the machine's cores / the largest n), so
    that only the GPU is shared differently."""
    import ray
    import ray.cloudpickle

    cuda = cfg.device == "cuda"
    cores = os.cpu_count() or 1
    cpus_each = max(1, cores // max(counts))
    module = sys.modules[__name__]
    if module.__name__ != "__main__":  # workers need not import this script: send it by value
        ray.cloudpickle.register_pickle_by_value(module)
    rows = []
    with local_ray(num_cpus=max(cores, cpus_each * max(counts)), num_gpus=1 if cuda else 0):
        for n in counts:
            gpus = math.floor(10_000 / n) / 10_000 if cuda else 0  # Ray's 1e-4 resolution
            actor = ray.remote(num_cpus=cpus_each, num_gpus=gpus)(WindowRunner)
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


@dataclass(frozen=True)
class DeviceThroughput:
    device: str
    """The GPU's name, or 'CPU only'."""
    device_type: str
    autocast: str | None
    channels_last: bool
    image_size: int
    batch_size: int
    iters_per_measurement: int
    tree_images_per_class: int
    compile: bool
    models: list[ModelThroughput]

    def to_json(self) -> dict:
        return {**asdict(self), "models": [m.to_json() for m in self.models]}


def device_throughput(args: argparse.Namespace) -> DeviceThroughput:
    """Every model of `--models` on a generated VisDA-layout tree, in a temporary folder."""
    from trainables.data.image_list import make_image_tree
    from trainables.finetune import resolve_device
    from trainables.precision import resolve_precision

    device = resolve_device(args.device)
    precision = resolve_precision("auto", "auto", device)  # the visda preset's settings
    models = []
    with tempfile.TemporaryDirectory(prefix="asg-bench-") as tmp:
        folder = Path(tmp)
        size = args.image_size + max(1, args.image_size // 8)  # a bit larger than the crop
        tree = make_image_tree(folder / "tree", args.tree_images_per_class, 12, size, seed=0)
        for model in args.models:
            weights = random_weights_file(model, folder)
            cfg = device_config(model, tree, weights, folder / "cache", args, device.type)
            models.append(model_throughput(cfg, args))
    return DeviceThroughput(
        device=device_name(device),
        device_type=device.type,
        autocast=None if precision.autocast_dtype is None else str(precision.autocast_dtype),
        channels_last=precision.channels_last,
        image_size=args.image_size,
        batch_size=args.batch_size,
        iters_per_measurement=args.iters,
        tree_images_per_class=args.tree_images_per_class,
        compile=args.compile,
        models=models,
    )


# --- Tables ----------------------------------------------------------------------------------


def run_cost(preset_name: str, runs: int) -> dict:
    """Whole fine-tuning runs of the preset (hand-tuned schedule, `runs` seeds) in one worker
    process, as the power study and many-seed studies run them: their wall time, the worker's
    env build included, over the time of their SGD windows."""
    import tempfile

    from controllers.static_study import Variant, cost_ratio, run_study

    with tempfile.TemporaryDirectory() as d:
        records = run_study(
            [Variant(preset_name, preset(preset_name))],
            ["backbone:0.1,head:1"],
            list(range(runs)),
            Path(d) / "runs.jsonl",
            workers=1,
        )
    return {
        "runs": len(records),
        "wall_over_sgd": cost_ratio(records),
        "build_s": sum(r["build_s"] for r in records),
        "run_s": [r["run_s"] for r in records],
        "sgd_s": [r["sgd_s"] for r in records],
    }


def print_run_cost(c: dict, preset_name: str) -> None:
    total = c["build_s"] + sum(c["run_s"])
    print(
        f"\nRun cost ({preset_name}, {c['runs']} runs in one worker): wall {total:.1f} s "
        f"(env build {c['build_s']:.1f} s) / SGD windows {sum(c['sgd_s']):.1f} s = "
        f"{c['wall_over_sgd']:.2f}x"
    )


def print_overhead(o: Overhead, pairs: int) -> None:
    print(
        f"\n## Env overhead ({o.preset}, {o.iterations} SGD iterations per episode, "
        f"{pairs} interleaved pairs)\n"
    )
    print("| part | median seconds |\n|---|---|")
    print(f"| plain PyTorch loop | {o.plain_loop_median_s:.2f} |")
    for k, v in o.episode_median_s.items():
        print(f"| env episode: {k} | {v:.2f} |")
    direct = o.direct_episode_1_thread_s
    print(f"| direct episode, 1 torch thread (single measurement) | {direct:.2f} |")
    if o.rllib:
        print(f"| RLlib-sampled episode (single measurement) | {o.rllib['rllib_episode_s']:.2f} |")
    print(f"\n| ratio, A seconds / B seconds | median ({SPREAD}) |\n|---|---|")
    print(f"| env SGD windows / plain loop | {o.training_vs_plain.cell()} |")
    print(
        f"| env episode less proxy-validation / plain loop | {o.step_excl_proxy_vs_plain.cell()} |"
    )
    print(f"| env episode / plain loop | {o.total_vs_plain.cell()} |")
    if o.rllib:
        print(
            "| RLlib episode / direct episode, 1 thread: single measurement, not a ratio "
            f"to trust | {o.rllib['rllib_episode_over_direct']:.3f}x |"
        )


def print_proxy(rows: list[ProxyRow], preset_name: str, pairs: int) -> None:
    print(f"\n## Proxy-validation cost per step ({preset_name}, {pairs} interleaved pairs)\n")
    print(
        f"| proxy size | step, median s | proxy eval, median s | share of step, median "
        f"({SPREAD}) |\n|---|---|---|---|"
    )
    for r in rows:
        s = r.share_of_step
        print(
            f"| {r.proxy_size} | {s.b_median_s:.2f} | {s.a_median_s:.3f} | "
            f"{100 * s.median_ratio:.1f}% ({100 * s.ratio_lo:.1f}-{100 * s.ratio_hi:.1f}%) |"
        )


def print_scaling(rows: list[ScalingRow], preset_name: str, pairs: int) -> None:
    print(f"\n## Meta-training throughput ({preset_name} preset, PPO, {pairs} interleaved pairs)\n")
    print(
        f"| env runners | episodes/min | speed-up, median ({SPREAD}) | efficiency |\n"
        "|---|---|---|---|"
    )
    for r in rows:
        speedup = "1 (reference)" if r.speedup is None else r.speedup.cell()
        print(
            f"| {r.env_runners} | {r.episodes_per_min:.1f} | {speedup} | "
            f"{100 * r.efficiency:.0f}% |"
        )


def print_device(d: DeviceThroughput, pairs: int) -> None:
    precision = (
        f"autocast {d.autocast or 'off'}, channels_last {'on' if d.channels_last else 'off'}"
    )
    print(
        f"\n## Training throughput on {d.device} ({d.device_type}; {precision}; batch "
        f"{d.batch_size}, {d.image_size} px, {d.iters_per_measurement} iterations per "
        f"measurement, {pairs} interleaved pairs)\n"
    )
    print("| model | loop | images/s | median s | peak GPU memory |\n|---|---|---|---|---|")
    for m in d.models:
        for loop in (m.env, m.plain, m.best):
            peak = "n/a" if loop.peak_memory_gib is None else f"{loop.peak_memory_gib:.2f} GiB"
            print(
                f"| {m.model} | {loop.loop} | {loop.images_per_s:.1f} | {loop.median_s:.3f} | "
                f"{peak} |"
            )
    print(
        "\n| model | env / plain images/s (goal >= 0.95) | plain / best images/s "
        "(goal >= 0.80) |\n|---|---|---|"
    )
    for m in d.models:
        print(f"| {m.model} | {m.env_vs_plain.cell()} | {m.plain_vs_best.cell()} |")
    if any(m.runners for m in d.models):
        shares = "1/n GPU each" if d.device_type == "cuda" else "no GPU: the CPU is shared"
        print(f"\n### Env runners sharing one GPU ({d.device}; Ray actors, {shares})\n")
        print(
            f"| model | runners | aggregate images/s | speed-up vs 1 runner, median ({SPREAD}) "
            "|\n|---|---|---|---|"
        )
        for m in d.models:
            for r in m.runners:
                speedup = "1 (reference)" if r.speedup is None else r.speedup.cell()
                print(f"| {m.model} | {r.runners} | {r.images_per_s:.1f} | {speedup} |")


# --- Command line ----------------------------------------------------------------------------


def _int_list(p: argparse.ArgumentParser, flag: str, text: str, minimum: int = 1) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{flag} takes comma-separated integers, got {text!r}")
    if any(v < minimum for v in values):
        p.error(f"{flag} values must be >= {minimum}, got {text!r}")
    return values


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The flags of a command line; no side effects."""
    p = OneLineErrorParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--parts", default="overhead,proxy,scaling", help=f"which measurements: {','.join(PARTS)}"
    )
    p.add_argument("--pairs", type=int, default=5, help="measured A/B pairs per ratio (>= 1)")
    p.add_argument("--preset", default="embedded", help="env preset for overhead and proxy cost")
    p.add_argument("--scaling-preset", default="tiny", help="env preset for the scaling part")
    p.add_argument("--runners", default="1,2,4", help="env runner counts for scaling")
    p.add_argument("--proxy-sizes", default="100,250,500,1000,2000", help="proxy split sizes")
    d = p.add_argument_group("device part (ASG's VisDA recipe on a generated image tree)")
    d.add_argument("--models", default=",".join(DEVICE_MODELS), help="ResNets to measure")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    d.add_argument("--image-size", type=int, default=224, help="crop size in pixels")
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--iters", type=int, default=50, help="SGD iterations per measurement")
    d.add_argument(
        "--tree-images-per-class", type=int, default=40, help="generated images per class"
    )
    d.add_argument(
        "--gpu-runners", default="1,2,4", help="runner counts sharing one GPU ('' to skip)"
    )
    d.add_argument(
        "--compile", action="store_true", help="torch.compile the best loop (takes minutes)"
    )
    p.add_argument("--output", default=None, help="write the measurements as JSON here")
    args = p.parse_args(argv)
    args.parts = [s for s in args.parts.split(",") if s]
    unknown = [s for s in args.parts if s not in PARTS]
    if unknown or not args.parts:
        p.error(f"--parts {','.join(unknown) or 'is empty'}: choose from {','.join(PARTS)}")
    if args.pairs < 1:
        p.error(f"--pairs must be >= 1, got {args.pairs}")
    args.models = [s for s in args.models.split(",") if s]
    bad = [m for m in args.models if m not in DEVICE_MODELS]
    if bad or not args.models:
        p.error(f"--models {','.join(bad) or 'is empty'}: choose from {','.join(DEVICE_MODELS)}")
    for flag in ("image_size", "batch_size", "iters", "tree_images_per_class"):
        least = 8 if flag == "image_size" else 1
        if getattr(args, flag) < least:
            p.error(f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(args, flag)}")
    args.runners = _int_list(p, "--runners", args.runners)
    args.proxy_sizes = _int_list(p, "--proxy-sizes", args.proxy_sizes)
    args.gpu_runners = _int_list(p, "--gpu-runners", args.gpu_runners)
    if not args.runners:
        p.error("--runners is empty")
    preset(args.preset)  # fail fast on a bad preset name
    preset(args.scaling_preset)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs",
        "device_name": device_name(),
        "command": " ".join(["python experiments/benchmark_env.py", *(argv or sys.argv[1:])]),
        "pairs": args.pairs,
        "warmup_pairs": WARMUP_PAIRS,
        "spread": SPREAD,
    }
    if "overhead" in args.parts:
        o = overhead(args.preset, args.pairs, seed=0)
        report["overhead"] = o.to_json()
        print_overhead(o, args.pairs)
    if "proxy" in args.parts:
        rows = proxy_cost(args.preset, args.proxy_sizes, args.pairs, seed=0)
        report["proxy_cost"] = [
            {
                "proxy_size": r.proxy_size,
                "share_of_step": r.share_of_step.to_json(
                    a="proxy-validation pass", b="env step", ratio="A seconds / B seconds"
                ),
            }
            for r in rows
        ]
        print_proxy(rows, args.preset, args.pairs)
    if "scaling" in args.parts:
        rows = scaling(args.scaling_preset, args.runners, args.pairs)
        report["scaling"] = [
            {
                "env_runners": r.env_runners,
                "episodes_per_min": r.episodes_per_min,
                "efficiency": r.efficiency,
                "speedup": None
                if r.speedup is None
                else r.speedup.to_json(
                    a=f"{rows[0].env_runners} runner(s)",
                    b=f"{r.env_runners} runners",
                    ratio="A seconds per episode / B seconds per episode = speed-up",
                ),
            }
            for r in rows
        ]
        print_scaling(rows, args.scaling_preset, args.pairs)
    if "runcost" in args.parts:
        report["run_cost"] = run_cost(args.preset, args.pairs)
        print_run_cost(report["run_cost"], args.preset)
    if "device" in args.parts:
        d = device_throughput(args)
        report["device_throughput"] = d.to_json()
        print_device(d, args.pairs)
    print(f"\nmachine: {report['machine']}; device: {report['device_name']}")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
