"""What the environment costs: env-driven fine-tuning versus a plain PyTorch loop, the price of
proxy-validation, meta-training throughput as env runners are added, training throughput
on a device (a GPU) in ASG's VisDA recipe, what a whole run costs over its SGD, and what
scoring costs at each evaluation batch size.

How to run:
    python experiments/benchmark_env.py                 # overhead, proxy, scaling: CPU parts
    python experiments/benchmark_env.py --parts overhead proxy
    python experiments/benchmark_env.py --parts runcost --pairs 4   # 4 whole runs: wall / SGD
    python experiments/benchmark_env.py --parts evalbatch       # scoring time by batch size
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

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from controllers.atomic_files import write_json
from experiments.benchmarks import tables
from experiments.benchmarks.device import DeviceOptions, device_throughput
from experiments.benchmarks.eval_batch import eval_batch_cost
from experiments.benchmarks.overhead import overhead
from experiments.benchmarks.proxy import proxy_cost
from experiments.benchmarks.runcost import run_cost
from experiments.benchmarks.scaling import scaling
from experiments.benchmarks.timing import report_header
from trainables.config import PresetName
from trainables.entry import Flat, command_line, parse_args, run_main, script_doc
from trainables.errors import ConfigError

Part = Literal["overhead", "proxy", "scaling", "device", "runcost", "evalbatch"]


@dataclass(frozen=True)
class Args:
    device_part: Flat[DeviceOptions]
    parts: tuple[Part, ...] = ("overhead", "proxy", "scaling")
    """Which measurements, space-separated (the older comma-separated form is read too)."""
    preset: PresetName = "embedded"
    """Env preset for overhead, proxy cost, run cost and evaluation batch size."""
    scaling_preset: PresetName = "tiny"
    """Env preset for the scaling part."""
    runners: tuple[int, ...] = (1, 2, 4)
    """Env runner counts for scaling."""
    proxy_sizes: tuple[int, ...] = (100, 250, 500, 1000, 2000)
    """Proxy split sizes."""
    eval_batch_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Evaluation batch sizes for the evalbatch part (each against the default one)."""
    output: str | None = None
    """Write the measurements as JSON here."""
    address: str | None = None
    """Ray cluster the scaling and RLlib-overhead parts run on ('auto' or host:port; RAY_ADDRESS,
    as under `ray job submit`, counts too). Without one: a Ray of the benchmark's own."""

    @property
    def pairs(self) -> int:
        return self.device_part.pairs


def parse(argv: list[str] | None) -> Args:
    """The flags of a command line; no side effects. A bad value is a one-line ConfigError."""
    args = parse_args(Args, argv, Args(DeviceOptions()), script_doc(__doc__))  # type: ignore[arg-type]
    d = args.device_part
    if not args.parts:
        raise ConfigError("--parts is empty")
    if d.pairs < 1:
        raise ConfigError(f"--pairs must be >= 1, got {d.pairs}")
    if not d.models:
        raise ConfigError("--models is empty")
    for flag in ("image_size", "batch_size", "iters", "tree_images_per_class"):
        least = 8 if flag == "image_size" else 1
        if getattr(d, flag) < least:
            raise ConfigError(
                f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(d, flag)}"
            )
    for flag in ("runners", "proxy_sizes", "eval_batch_sizes", "gpu_runners"):
        values = getattr(d if flag == "gpu_runners" else args, flag)
        if any(v < 1 for v in values):
            raise ConfigError(f"--{flag.replace('_', '-')} values must be >= 1, got {values}")
    if not args.runners:
        raise ConfigError("--runners is empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    command = command_line("experiments/benchmark_env.py", argv)
    report = report_header(command, args.pairs)
    if "overhead" in args.parts:
        o = overhead(args.preset, args.pairs, address=args.address)
        report["overhead"] = o.to_json()
        tables.print_overhead(o, args.pairs)
    if "proxy" in args.parts:
        rows = proxy_cost(args.preset, args.proxy_sizes, args.pairs)
        report["proxy_cost"] = [r.to_json() for r in rows]
        tables.print_proxy(rows, args.preset, args.pairs)
    if "scaling" in args.parts:
        rows = scaling(args.scaling_preset, args.runners, args.pairs, address=args.address)
        report["scaling"] = [r.to_json(reference_runners=rows[0].env_runners) for r in rows]
        tables.print_scaling(rows, args.scaling_preset, args.pairs)
    if "runcost" in args.parts:
        cost = run_cost(args.preset, args.pairs)
        report["run_cost"] = cost.to_json()
        tables.print_run_cost(cost, args.preset)
    if "evalbatch" in args.parts:
        rows = eval_batch_cost(args.preset, list(args.eval_batch_sizes), args.pairs)
        report["eval_batch"] = [r.to_json() for r in rows]
        tables.print_eval_batch(rows, args.preset, args.pairs)
    if "device" in args.parts:
        d = device_throughput(args.device_part)
        report["device_throughput"] = d.to_json()
        tables.print_device(d, args.pairs)
    print(f"\nmachine: {report['machine']}; device: {report['device_name']}")
    if args.output:
        write_json(Path(args.output), report, indent=2)
    return 0


if __name__ == "__main__":
    run_main(main)
