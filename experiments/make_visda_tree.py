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

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trainables.entry import parse_args, run_main, script_doc
from trainables.errors import ConfigError
from trainables.models.resnet import RESNETS, random_weights_file


@dataclass(frozen=True)
class Args:
    out: Path
    """Folder to write (tree/ inside)."""
    num_classes: int = 12
    """Classes (12: VisDA's names)."""
    images_per_class: int = 24
    """Images per class and split."""
    image_size: int = 256
    """Side of each image in pixels."""
    seed: int = 0
    """Seed of the generated images and weights."""
    random_weights: Literal[RESNETS] | None = None  # type: ignore[valid-type]
    """Also write <out>/<model>-random.pth."""


def parse(argv: list[str] | None) -> Args:
    """The flags of a command line; no side effects."""
    args = parse_args(Args, argv, None, script_doc(__doc__))  # type: ignore[arg-type]
    for flag, least in (("num_classes", 1), ("images_per_class", 1), ("image_size", 8)):
        if getattr(args, flag) < least:
            raise ConfigError(
                f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(args, flag)}"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from trainables.data.image_list import make_image_tree

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
