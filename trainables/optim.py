"""Layer-wise learning rates as scales on optimizer parameter groups (timm's `lr_scale` idea).

Each named layer group gets one parameter group carrying `lr_scale`; a base schedule sets the
base rate and every group's rate is `base x lr_scale`. A controller only ever writes `lr_scale`,
so the schedule and the controller compose without knowing about each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn


def make_sgd(
    groups: Mapping[str, Sequence[nn.Parameter]],
    base_lr: float,
    momentum: float,
    weight_decay: float,
) -> torch.optim.SGD:
    param_groups = [
        {"params": list(params), "name": name, "lr_scale": 1.0, "lr": base_lr}
        for name, params in groups.items()
    ]
    return torch.optim.SGD(param_groups, lr=base_lr, momentum=momentum, weight_decay=weight_decay)


def set_lr_scales(optimizer: torch.optim.Optimizer, scales: Sequence[float]) -> None:
    if len(scales) != len(optimizer.param_groups):
        raise ValueError(f"{len(scales)} scales for {len(optimizer.param_groups)} groups")
    for group, scale in zip(optimizer.param_groups, scales, strict=True):
        group["lr_scale"] = float(scale)


def lr_scales(optimizer: torch.optim.Optimizer) -> list[float]:
    return [g["lr_scale"] for g in optimizer.param_groups]


def apply_base_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_scale"]


def scheduled_base_lr(base_lr: float, schedule: str, it: int, total: int) -> float:
    """Base rate at iteration `it` of `total`: 'constant', 'step' (x0.1 from half the run, x0.01
    from three quarters) or 'cosine' (half-cosine decay to zero)."""
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return base_lr * (0.01 if 4 * it >= 3 * total else 0.1 if 2 * it >= total else 1.0)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(it, total) / max(total, 1)))
