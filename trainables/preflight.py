"""Checks run in the driver before any Ray worker starts, so that bad input fails at once with
one line instead of as a traceback inside a remote trial."""

from __future__ import annotations

from trainables.config import FinetuneConfig
from trainables.data.splits import build_splits
from trainables.models import build_model


def check_inputs(cfg: FinetuneConfig) -> None:
    """Dataset layout and labels (VisDA), model name and weights file: raises ASGError."""
    if cfg.dataset == "visda":
        num_classes = build_splits(cfg).num_classes
    else:
        num_classes = 10
    build_model(cfg.model, num_classes, pretrained=cfg.pretrained, weights=cfg.weights)
