"""The fine-tuning loop's two halves, torchvision-reference style: train a window, evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from trainables import losses
from trainables.metrics import Accuracy, accuracy_from_confusion, confusion_matrix
from trainables.optim import apply_base_lr, scheduled_base_lr


@dataclass(frozen=True)
class WindowStats:
    task_loss: float
    """Mean cross-entropy over the window's iterations (nan if it diverged)."""
    guidance_loss: float
    """Mean unweighted guidance loss (KL, L2-SP or feature L2; 0 when off)."""
    iters: int
    images: int
    seconds: float
    teacher_seconds: float
    """Part of `seconds` spent in the frozen teacher's forward pass."""
    diverged: bool


@dataclass
class Guidance:
    """What the guidance term needs: its kind, weight, and a teacher or reference weights."""

    kind: str
    weight: float
    teacher: nn.Module | None = None
    reference: dict[str, torch.Tensor] | None = None

    @property
    def active(self) -> bool:
        return self.weight > 0


def train_window(
    model: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    guidance: Guidance,
    *,
    start_iter: int,
    iters: int,
    total_iters: int,
    base_lr: float,
    schedule: str,
    device: torch.device,
    bn_mode: str = "frozen",
) -> WindowStats:
    """Run `iters` SGD iterations; stop early, flagged `diverged`, on a non-finite loss.

    With `bn_mode='frozen'` the whole model stays in eval mode, as in ASG: BatchNorm uses and
    keeps the ImageNet running statistics, so only parameters (never buffers) change, and the
    student's ImageNet head equals the teacher's until the first update."""
    model.train(bn_mode == "train")
    task_sum = guide_sum = teacher_s = 0.0
    images = done = 0
    t0 = time.perf_counter()
    for i in range(iters):
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        apply_base_lr(optimizer, scheduled_base_lr(base_lr, schedule, start_iter + i, total_iters))
        out = model(x)
        task = F.cross_entropy(out.task_logits, y)
        guide = torch.zeros((), device=device)
        if guidance.active:
            if guidance.kind == "l2sp":
                guide = losses.l2_sp(model, guidance.reference or {})
            else:
                t1 = time.perf_counter()
                with torch.no_grad():
                    t_out = guidance.teacher(x)  # type: ignore[misc]
                teacher_s += time.perf_counter() - t1
                if guidance.kind == "kl":
                    guide = losses.proxy_guidance_kl(out.imagenet_logits, t_out.imagenet_logits)
                else:
                    guide = losses.feature_l2(out.features, t_out.features)
        loss = task + guidance.weight * guide
        if not math.isfinite(loss.item()):
            return WindowStats(math.nan, math.nan, done, images, _since(t0), teacher_s, True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        task_sum += task.item()
        guide_sum += guide.item()
        images += len(y)
        done += 1
    n = max(done, 1)
    return WindowStats(task_sum / n, guide_sum / n, done, images, _since(t0), teacher_s, False)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    flip: bool = False,
) -> Accuracy:
    """Accuracy and NLL of the task head; with `flip`, softmax averaged over the image and its
    mirror."""
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    nll_sum, n = 0.0, 0
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        probs = model(x).task_logits.float().softmax(dim=1)
        if flip:
            probs = 0.5 * (probs + model(x.flip(3)).task_logits.float().softmax(dim=1))
        probs = probs.cpu()
        cm += confusion_matrix(probs.argmax(dim=1), y, num_classes)
        picked = probs.gather(1, y.long()[:, None]).clamp_min(1e-12)
        nll_sum += -picked.log().sum().item()
        n += len(y)
    return accuracy_from_confusion(cm, nll_sum / max(n, 1))


def infinite_batches(
    loader_factory, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless mini-batches, reshuffled every epoch from `generator`."""
    while True:
        yield from loader_factory(generator)


def _since(t0: float) -> float:
    return time.perf_counter() - t0
