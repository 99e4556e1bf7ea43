"""Classification metrics: mean per-class accuracy (the VisDA-17 metric) and overall accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Accuracy:
    mean_class: float
    """Mean over classes of per-class recall: VisDA-17's headline metric."""
    overall: float
    """Fraction of all samples classified correctly."""
    per_class: tuple[float, ...]
    nll: float = float("nan")
    """Mean negative log-likelihood of the true class (nats); unlike accuracy, it keeps
    moving once every sample is classified correctly."""

    def score(self, metric: str) -> float:
        """Higher is better: the mean per-class accuracy ('acc') or minus the NLL ('nll'), as
        --reward-metric names it (the reward's proxy score, and what WiSE-FT's alpha is
        picked by)."""
        return self.mean_class if metric == "acc" else -self.nll


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [true, predicted]."""
    idx = labels.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def accuracy_from_confusion(cm: torch.Tensor, nll: float = float("nan")) -> Accuracy:
    support = cm.sum(dim=1)
    correct = cm.diag()
    present = support > 0  # a class absent from the split does not count as 0% recall
    per_class = torch.where(present, correct / support.clamp(min=1), torch.nan)
    mean_class = per_class[present].mean().item() if present.any() else float("nan")
    overall = (correct.sum() / cm.sum().clamp(min=1)).item()
    return Accuracy(mean_class, overall, tuple(per_class.tolist()), nll)
