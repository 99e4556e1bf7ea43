"""A converged, seed-free start for the new task head: a linear probe on frozen features.

`frozen_pass` runs the pretrained model once over fixed training tensors and keeps its pooled
features and ImageNet logits; `fit_linear_probe` fits multinomial logistic regression to those
features with L-BFGS (deterministic: no mini-batches, no random init). LP-FT (Kumar et al., 2022)
starts fine-tuning from such a probe so that the backbone's first updates are not driven by a
random head's large gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FrozenPass:
    features: torch.Tensor
    """Pooled features [N, D] of the pretrained model, float32, on the run's device."""
    imagenet_logits: torch.Tensor
    """Its ImageNet logits [N, 1000], float32, on the CPU (they travel with the data loader)."""


@torch.no_grad()  # not inference_mode: the probe's fit back-propagates into these tensors
def frozen_pass(
    model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> FrozenPass:
    """The pretrained model (eval mode, as the frozen teacher runs) over `images`, in order."""
    was_training = model.training
    model.eval()
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        out = model(images[start : start + batch_size].to(device))
        feats.append(out.features.float())
        logits.append(out.imagenet_logits.float().cpu())
    model.train(was_training)
    return FrozenPass(torch.cat(feats), torch.cat(logits))


def fit_linear_probe(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float, max_iter: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [C, D], bias [C]) minimising mean cross-entropy + l2/2 x ||weight||^2, from zeros
    (the objective is convex, so the start only sets how long L-BFGS takes)."""
    x = features.detach().float()
    y = labels.to(x.device).long()
    w = torch.zeros(num_classes, x.shape[1], device=x.device, requires_grad=True)
    b = torch.zeros(num_classes, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    return w.detach().clone(), b.detach().clone()
