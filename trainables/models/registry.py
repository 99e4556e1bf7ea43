"""`build_model(name, ...)`: the one entry point from a `--model` flag to a `GroupedClassifier`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from trainables.errors import ConfigError
from trainables.models.efficientnet_lite import (
    EFFICIENTNET_GROUPS,
    LITE_MODELS,
    build_efficientnet_lite,
)
from trainables.models.grouped import GroupedClassifier
from trainables.models.resnet import RESNET_GROUPS, RESNETS, build_resnet

# The EfficientNet-Lite models share their group names (same stages), so a policy made for
# one is accepted on the others (the transfer from Lite0 to Lite1/Lite2).
MODEL_GROUPS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(LITE_MODELS, EFFICIENTNET_GROUPS),
    **dict.fromkeys(RESNETS, RESNET_GROUPS),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_GROUPS)

# Added to `seed` for the task head, so that its init does not depend on how much randomness
# building the backbone used (pretrained or not, which architecture).
_HEAD_SEED_OFFSET = 1_000_003


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Run the block under `torch.manual_seed(seed)`, restoring the global CPU RNG afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_model(
    name: str,
    num_classes: int,
    pretrained: bool = True,
    weights: str | Path | None = None,
    seed: int | None = None,
    head_hidden: int = 0,
) -> GroupedClassifier:
    """A classifier with ImageNet weights (default, or from the file `weights`) or random init.

    `seed` makes the random parts reproducible (the task head; the whole network when
    `pretrained=False`) without touching the global RNG. Models are built on the CPU.
    `head_hidden > 0` gives ASG's two-layer task head with that many hidden units.
    Raises `ConfigError` for an unknown name and `WeightsError` for missing or bad weights.
    """
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown --model '{name}'; choose from: {', '.join(MODEL_NAMES)}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    if weights is not None and not pretrained:
        raise ConfigError("--weights was given but the model is to be randomly initialised")
    with _seeded(seed):
        if name in LITE_MODELS:
            model: GroupedClassifier = build_efficientnet_lite(
                name, num_classes, pretrained, weights, head_hidden
            )
        else:
            model = build_resnet(name, num_classes, pretrained, weights, head_hidden)
    with _seeded(None if seed is None else seed + _HEAD_SEED_OFFSET):
        model.task_head.reset_parameters()
    return model
