"""Regularisers that keep a fine-tuned model close to its ImageNet-pretrained start.

`proxy_guidance_kl` is ASG's proxy guidance; `l2_sp` and `feature_l2` are the ablation's
alternatives (weights and features, instead of the ImageNet head's predictions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def proxy_guidance_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the 1000 ImageNet classes, averaged over the batch."""
    return F.kl_div(
        F.log_softmax(student_logits, dim=1),
        F.log_softmax(teacher_logits, dim=1),
        reduction="batchmean",
        log_target=True,
    )


def l2_sp(model: nn.Module, reference: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared L2 distance of each trainable parameter present in `reference` to its start."""
    terms = [
        (p - reference[name]).pow(2).sum()
        for name, p in model.named_parameters()
        if p.requires_grad and name in reference
    ]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def feature_l2(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between pooled features, per sample."""
    return (student_features - teacher_features).pow(2).sum(dim=1).mean()
