"""A VisDA-17-layout folder of generated images, to try the VisDA path without VisDA-17.

The images are flat colours per class (clean PNG "renders" in train/, noisier JPEG "photos" in
validation/), so any model learns them in a few windows; they test the plumbing (data loading,
GPUs, cluster runs, a class count other than VisDA's 12), not the science. With
`--random-weights`, a ResNet weights file of random values is written beside the tree for
`--weights` (torchvision's ImageNet weights need a download this project never does).

How to run (what the README's GPU run used):
    python experiments/make_visda_tree.py --out /tmp/e2e --num-classes 7 \
        --images-per-class 24 --image-size 256 --random-weights resnet101
    python experiments/asg_visda.py --preset visda --data-root /tmp/e2e/tree --num-classes 7 \
        --weights /tmp/e2e/resnet101-random.pth --bn-mode train ...

Random weights under frozen BatchNorm (ASG's default) give NaN at the first step, since
BatchNorm's running statistics then hold no information: pass `--bn-mode train` with them.
Prints the tree's path and the weights file's path.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from trainables.cli import OneLineErrorParser, run_main
from trainables.models.resnet import RESNETS, random_weights_file


@dataclass(frozen=True)
class Args:
    out: Path
    num_classes: int
    images_per_class: int
    image_size: int
    seed: int
    random_weights: str | None


def parse(argv: list[str] | None) -> Args:
    p = OneLineErrorParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--out", required=True, type=Path, help="folder to write (tree/ inside)")
    p.add_argument("--num-classes", type=int, default=12, help="classes (12: VisDA's names)")
    p.add_argument("--images-per-class", type=int, default=24, help="per class and split")
    p.add_argument("--image-size", type=int, default=256, help="side of each image in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--random-weights",
        choices=RESNETS,
        default=None,
        help="also write <out>/<model>-random.pth",
    )
    a = p.parse_args(argv)
    for flag, least in (("num_classes", 1), ("images_per_class", 1), ("image_size", 8)):
        if getattr(a, flag) < least:
            p.error(f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(a, flag)}")
    return Args(**vars(a))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from trainables.data.image_list import make_image_tree
    from trainables.errors import ConfigError

    try:
        tree = make_image_tree(
            args.out / "tree", args.images_per_class, args.num_classes, args.image_size, args.seed
        )
        print(f"tree: {tree}")
        if args.random_weights:
            print(f"weights: {random_weights_file(args.random_weights, args.out, args.seed)}")
    except OSError as e:
        raise ConfigError(f"--out {args.out}: cannot write {e.filename} ({e.strerror})") from None
    return 0


if __name__ == "__main__":
    run_main(main)
