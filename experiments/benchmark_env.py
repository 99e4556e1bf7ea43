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
import json
import sys
from pathlib import Path

from experiments.benchmarks import tables
from experiments.benchmarks.device import DeviceOptions, device_throughput
from experiments.benchmarks.overhead import overhead
from experiments.benchmarks.proxy import proxy_cost
from experiments.benchmarks.runcost import run_cost
from experiments.benchmarks.scaling import scaling
from experiments.benchmarks.timing import report_header
from trainables.cli import OneLineErrorParser, dataclass_from_args, run_main
from trainables.config import preset
from trainables.models.resnet import RESNETS

PARTS = ("overhead", "proxy", "scaling", "device", "runcost")
DEVICE = DeviceOptions()  # the device part's defaults


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
    d.add_argument("--models", default=",".join(DEVICE.models), help="ResNets to measure")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default=DEVICE.device)
    d.add_argument("--image-size", type=int, default=DEVICE.image_size, help="crop size in pixels")
    d.add_argument("--batch-size", type=int, default=DEVICE.batch_size)
    d.add_argument("--iters", type=int, default=DEVICE.iters, help="SGD iterations per measurement")
    d.add_argument(
        "--tree-images-per-class",
        type=int,
        default=DEVICE.tree_images_per_class,
        help="generated images per class",
    )
    d.add_argument(
        "--gpu-runners",
        default=",".join(map(str, DEVICE.gpu_runners)),
        help="runner counts sharing one GPU ('' to skip)",
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
    bad = [m for m in args.models if m not in RESNETS]
    if bad or not args.models:
        p.error(f"--models {','.join(bad) or 'is empty'}: choose from {','.join(RESNETS)}")
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
    command = " ".join(["python experiments/benchmark_env.py", *(argv or sys.argv[1:])])
    report = report_header(command, args.pairs)
    if "overhead" in args.parts:
        o = overhead(args.preset, args.pairs)
        report["overhead"] = o.to_json()
        tables.print_overhead(o, args.pairs)
    if "proxy" in args.parts:
        rows = proxy_cost(args.preset, args.proxy_sizes, args.pairs)
        report["proxy_cost"] = [r.to_json() for r in rows]
        tables.print_proxy(rows, args.preset, args.pairs)
    if "scaling" in args.parts:
        rows = scaling(args.scaling_preset, args.runners, args.pairs)
        report["scaling"] = [r.to_json(reference_runners=rows[0].env_runners) for r in rows]
        tables.print_scaling(rows, args.scaling_preset, args.pairs)
    if "runcost" in args.parts:
        cost = run_cost(args.preset, args.pairs)
        report["run_cost"] = cost.to_json()
        tables.print_run_cost(cost, args.preset)
    if "device" in args.parts:
        d = device_throughput(dataclass_from_args(DeviceOptions, args))
        report["device_throughput"] = d.to_json()
        tables.print_device(d, args.pairs)
    print(f"\nmachine: {report['machine']}; device: {report['device_name']}")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
