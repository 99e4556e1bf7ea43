"""Training throughput on a device (a GPU) in ASG's VisDA recipe, on a generated VisDA-layout
tree with random ResNet weights (no data, no download): the env's SGD windows against the plain
AMP loop, the plain loop against the best loop, then env runners sharing the GPU."""

from __future__ import annotations

import dataclasses
import gc
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from experiments.benchmarks.gpu_runners import RunnersRow, shared_gpu_runners
from experiments.benchmarks.loops import LR_MULTIPLIER, BestLoop, PlainLoop
from experiments.benchmarks.timing import Interleaved, Timed, device_name, interleaved
from trainables.config import FinetuneConfig, preset
from trainables.models.resnet import RESNETS, random_weights_file

ResNet = Literal[RESNETS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class DeviceOptions:
    """What the device part measures, and how."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to measure: 'auto' (CUDA when available), 'cpu' or 'cuda'."""
    models: tuple[ResNet, ...] = RESNETS
    """ResNets to measure, space-separated."""
    image_size: int = 224
    """Crop size in pixels."""
    batch_size: int = 32
    """SGD mini-batch size."""
    iters: int = 50
    """SGD iterations per measurement (one env window)."""
    tree_images_per_class: int = 40
    """Generated images per class."""
    gpu_runners: tuple[int, ...] = (1, 2, 4)
    """Runner counts sharing one GPU, space-separated (none, or '': skip)."""
    compile: bool = False
    """torch.compile the best loop (takes minutes)."""
    pairs: int = 5
    """Measured A/B pairs per ratio."""

    def __post_init__(self) -> None:  # any sequences (a command line's lists) become tuples
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "gpu_runners", tuple(self.gpu_runners))


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

    @classmethod
    def of(cls, name: str, timed: Timed, median_s: float) -> LoopResult:
        peak = None if timed.peak_bytes is None else timed.peak_bytes / 2**30
        return cls(name, timed.images, median_s, timed.images / median_s, peak)


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


def device_config(
    model: str, tree: Path, weights: Path, cache: Path, opts: DeviceOptions, device: str
) -> FinetuneConfig:
    """The 'visda' preset (ASG's recipe: frozen BatchNorm, KL guidance, amp and channels_last
    'auto') on the generated tree; one window = `opts.iters` iterations, no head warm-up."""
    return preset(
        "visda",
        data_root=str(tree),
        num_classes=12,
        model=model,
        weights=str(weights),
        image_size=opts.image_size,
        batch_size=opts.batch_size,
        iters_per_window=opts.iters,
        windows=1_000_000,  # never finished: windows run back to back without a reset
        head_warmup_iters=0,
        image_cache=str(cache),
        device=device,
    )


def loop_throughput(cfg: FinetuneConfig, opts: DeviceOptions) -> ModelThroughput:
    """Env windows against the plain AMP loop, then the plain loop against the best loop,
    each interleaved, every measurement `opts.iters` iterations."""
    from trainables.finetune import FinetuneRun

    run = FinetuneRun(cfg)
    run.reset(0)
    multipliers = [LR_MULTIPLIER] * run.num_groups
    env = Timed(lambda: run.train_window(multipliers).images, run.device)
    plain_loop = PlainLoop(run)
    plain = Timed(lambda: plain_loop(opts.iters), run.device)
    env_vs_plain = interleaved(plain, env, opts.pairs)
    best_loop = BestLoop(run, compile=opts.compile)
    best = Timed(lambda: best_loop(opts.iters), run.device)
    plain_vs_best = interleaved(best, plain, opts.pairs)
    best_name = "best loop (batch on device" + (", compiled)" if opts.compile else ")")
    return ModelThroughput(
        model=cfg.model,
        env=LoopResult.of("env SGD windows", env, env_vs_plain.b_median_s),
        plain=LoopResult.of("plain PyTorch loop", plain, env_vs_plain.a_median_s),
        best=LoopResult.of(best_name, best, plain_vs_best.a_median_s),
        env_vs_plain=env_vs_plain,
        plain_vs_best=plain_vs_best,
        runners=[],
    )


def model_throughput(cfg: FinetuneConfig, opts: DeviceOptions) -> ModelThroughput:
    """For one model: the three loops in this process, then (their memory freed) runners
    sharing the GPU."""
    result = loop_throughput(cfg, opts)
    gc.collect()
    if cfg.device == "cuda":
        torch.cuda.empty_cache()
    if opts.gpu_runners:
        runners = shared_gpu_runners(cfg, list(opts.gpu_runners), opts.pairs)
        result = dataclasses.replace(result, runners=runners)
    return result


def device_throughput(opts: DeviceOptions) -> DeviceThroughput:
    """Every model of `opts.models` on a generated VisDA-layout tree, in a temporary folder."""
    from trainables.data.image_list import make_image_tree
    from trainables.finetune import resolve_device
    from trainables.precision import resolve_precision

    device = resolve_device(opts.device)
    precision = resolve_precision("auto", "auto", device)  # the visda preset's settings
    models = []
    with tempfile.TemporaryDirectory(prefix="asg-bench-") as tmp:
        folder = Path(tmp)
        size = opts.image_size + max(1, opts.image_size // 8)  # a bit larger than the crop
        tree = make_image_tree(folder / "tree", opts.tree_images_per_class, 12, size, seed=0)
        for model in opts.models:
            weights = random_weights_file(model, folder)
            cfg = device_config(model, tree, weights, folder / "cache", opts, device.type)
            models.append(model_throughput(cfg, opts))
    return DeviceThroughput(
        device=device_name(device),
        device_type=device.type,
        autocast=None if precision.autocast_dtype is None else str(precision.autocast_dtype),
        channels_last=precision.channels_last,
        image_size=opts.image_size,
        batch_size=opts.batch_size,
        iters_per_measurement=opts.iters,
        tree_images_per_class=opts.tree_images_per_class,
        compile=opts.compile,
        models=models,
    )
