"""The fine-tuning loop's two halves, torchvision-reference style: train a window, evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from trainables import losses
from trainables.csg import ContrastiveGuidance
from trainables.metrics import Accuracy, accuracy_from_confusion, confusion_matrix
from trainables.optim import apply_base_lr, scheduled_base_lr
from trainables.precision import Precision, resolve_precision


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
    """What the guidance term needs: its kind, weight, and a teacher or reference weights;
    for 'csg' also the contrastive heads and the key view's augmentation."""

    kind: str
    weight: float
    teacher: nn.Module | None = None
    reference: dict[str, torch.Tensor] | None = None
    csg: ContrastiveGuidance | None = None
    key_view: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def active(self) -> bool:
        return self.weight > 0

    @property
    def wants_maps(self) -> bool:
        return self.active and self.kind == "csg"


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
    precision: Precision | None = None,
    after_step: Callable[[], None] | None = None,
) -> WindowStats:
    """Run `iters` SGD iterations (calling `after_step` after each optimizer step) and flag the
    window `diverged` if a loss was not finite.

    With `bn_mode='frozen'` the whole model stays in eval mode, as in ASG: BatchNorm uses and
    keeps the ImageNet running statistics, so only parameters (never buffers) change, and the
    student's ImageNet head equals the teacher's until the first update.

    Nothing inside the loop waits for the device: losses are summed on it and read once, at
    the window's end, which is also where finiteness is checked (a non-finite loss poisons the
    weights, so the rest of a diverged window changes nothing that is kept)."""
    precision = precision or resolve_precision("off", "off", device)
    model.train(bn_mode == "train")
    task_sum = torch.zeros((), device=device)
    guide_sum = torch.zeros((), device=device)
    teacher = _StageTimer(device)
    images = 0
    t0 = time.perf_counter()
    for i in range(iters):
        x, y, *cached = next(batches)  # a third tensor: the teacher's logits, precomputed
        x, y = precision.inputs(x, device), y.to(device, non_blocking=True)
        t_logits = cached[0].to(device, non_blocking=True) if cached else None
        apply_base_lr(optimizer, scheduled_base_lr(base_lr, schedule, start_iter + i, total_iters))
        with precision.autocast():
            out = model(x, with_maps=guidance.wants_maps)
            task = F.cross_entropy(out.task_logits.float(), y)
            guide = _guidance_term(model, out, x, guidance, teacher, t_logits)
        loss = task + guidance.weight * guide
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if guidance.csg is not None and guidance.active:
            guidance.csg.momentum_update()
        if after_step is not None:
            after_step()
        task_sum += task.detach()
        guide_sum += guide.detach()
        images += len(y)
    n = max(iters, 1)
    task_mean, guide_mean = (torch.stack([task_sum, guide_sum]) / n).tolist()  # the one sync
    diverged = not (math.isfinite(task_mean) and math.isfinite(guide_mean))
    if diverged:
        task_mean = guide_mean = math.nan
    return WindowStats(
        task_mean, guide_mean, iters, images, _since(t0), teacher.seconds(), diverged
    )


def _guidance_term(
    model: nn.Module,
    out,
    x: torch.Tensor,
    guidance: Guidance,
    timer: _StageTimer,
    teacher_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """The unweighted guidance loss of one batch (0 when guidance is off); KL uses
    `teacher_logits` when the data loader brings them."""
    if not guidance.active:
        return torch.zeros((), device=x.device)
    if guidance.kind == "kl" and teacher_logits is not None:
        return losses.proxy_guidance_kl(out.imagenet_logits.float(), teacher_logits.float())
    if guidance.kind == "l2sp":
        return losses.l2_sp(model, guidance.reference or {})
    if guidance.kind == "csg":
        return _contrastive_term(model, out, x, guidance, timer)
    with timer, torch.inference_mode():
        t_out = guidance.teacher(x)  # type: ignore[misc]
    if guidance.kind == "kl":  # inference tensors cannot be saved for backward: clone them
        return losses.proxy_guidance_kl(
            out.imagenet_logits.float(), t_out.imagenet_logits.float().clone()
        )
    return losses.feature_l2(out.features.float(), t_out.features.float().clone())


def _contrastive_term(
    model: nn.Module, out, x: torch.Tensor, guidance: Guidance, timer: _StageTimer
) -> torch.Tensor:
    """CSG: the frozen key encoder on the key view, A-pool's attention from the model on that
    view, and InfoNCE per stage, in float32. The extra passes count as the teacher's time."""
    csg = guidance.csg
    assert csg is not None and guidance.teacher is not None
    with timer, torch.no_grad():
        x_k = guidance.key_view(x) if guidance.key_view is not None else x
        keys = guidance.teacher(x_k, with_maps=True).maps
        attention = model(x_k, with_maps=True).maps if csg.config.pool == "apool" else None
    with torch.autocast(x.device.type, enabled=False):
        return csg(_floats(out.maps), _floats(keys), _floats(attention))


def _floats(maps: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if maps is None else {k: v.float() for k, v in maps.items()}


class _StageTimer:
    """Summed wall time of a stage inside a window without a host sync per use: CUDA events on
    a GPU (read once at the end), the clock on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._pairs: list = []
        self._cpu = 0.0

    def __enter__(self) -> None:
        if self._cuda:
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            self._pairs.append([start, None])
        else:
            self._t = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self._cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pairs[-1][1] = end
        else:
            self._cpu += time.perf_counter() - self._t

    def seconds(self) -> float:
        if not self._cuda:
            return self._cpu
        torch.cuda.synchronize()
        return sum(a.elapsed_time(b) for a, b in self._pairs) / 1000.0


@torch.inference_mode()
def evaluate_with_features(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    flip: bool = False,
    precision: Precision | None = None,
    max_features: int = 0,
) -> tuple[Accuracy, torch.Tensor]:
    """Accuracy and NLL of the task head; with `flip`, softmax averaged over the image and its
    mirror (ASG's evaluation). Counts stay on the device until the end of the split. Also the
    pooled features (float32, of the unmirrored images) of the first `max_features` images,
    taken from the same forward passes."""
    precision = precision or resolve_precision("off", "off", device)
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    nll_sum = torch.zeros((), dtype=torch.float64, device=device)
    n, feats = 0, []
    for x, y in loader:
        x, y = precision.inputs(x, device), y.to(device, non_blocking=True).long()
        with precision.autocast():
            out = model(x)
            probs = out.task_logits.float().softmax(dim=1)
            if flip:
                probs = 0.5 * (probs + model(x.flip(3)).task_logits.float().softmax(dim=1))
        if n < max_features:
            feats.append(out.features.float()[: max_features - n])
        cm += confusion_matrix(probs.argmax(dim=1), y, num_classes)
        nll_sum += -probs.gather(1, y[:, None]).clamp_min(1e-12).log().sum().double()
        n += len(y)
    features = torch.cat(feats) if feats else torch.zeros(0, device=device)
    return accuracy_from_confusion(cm.cpu(), nll_sum.item() / max(n, 1)), features


def infinite_batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless mini-batches: epoch after epoch of `loader` (reshuffled by its sampler)."""
    while True:
        yield from loader


def _since(t0: float) -> float:
    return time.perf_counter() - t0
