"""Checks run in the driver before any Ray worker starts, so that bad input fails at once with
one line instead of as a traceback inside a remote trial."""

from __future__ import annotations

import os
import time

from trainables.config import FinetuneConfig
from trainables.data.splits import build_splits
from trainables.models import build_model


def check_inputs(cfg: FinetuneConfig) -> None:
    """Dataset layout, labels and images (VisDA), model name and weights file: raises ASGError."""
    if cfg.dataset == "visda":
        splits = build_splits(cfg)
        num_classes = splits.num_classes
        if cfg.verify_images:
            _verify_split_images(splits, cfg.verify_images)
    else:
        num_classes = 10
    build_model(cfg.model, num_classes, pretrained=cfg.pretrained, weights=cfg.weights)


def _verify_split_images(splits, limit: int) -> None:
    from trainables.data.image_list import verify_images

    datasets = [splits.train, *splits.proxies.values(), splits.test]
    paths = sorted({p for d in datasets for p in d.paths})
    total = len(paths) if limit < 0 else min(limit, len(paths))
    last = time.perf_counter()

    def progress(done: int, _: int) -> None:
        nonlocal last
        if time.perf_counter() - last > 10:  # a line every 10 s, none for small datasets
            last = time.perf_counter()
            print(f"[asg] checked {done:,}/{total:,} images", flush=True)

    print(
        f"[asg] decoding {total:,} images to check them (--verify-images 0 skips this)",
        flush=True,
    )
    verify_images(
        paths, None if limit < 0 else limit, workers=min(16, os.cpu_count() or 1), progress=progress
    )
