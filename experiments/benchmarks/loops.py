"""The training loops the env's SGD windows are compared with: `PlainLoop` (a bare PyTorch loop
doing the env's work) and `BestLoop` (the fastest loop this benchmark knows for the device),
both with the timed windows' SGD (`window_sgd`) and the env's loss (`task_and_kl_loss`)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from trainables.config import FinetuneConfig

LR_MULTIPLIER = 0.1  # every group's rate in the timed windows
LR_ACTION = 1  # the env's action index of LR_MULTIPLIER, for every group


def window_sgd(model: torch.nn.Module, cfg: FinetuneConfig, fused: bool = False):
    """SGD over `model`'s trainable parameters with the run's momentum and weight decay, every
    rate the config's base rate x LR_MULTIPLIER (as in the timed env windows); `fused`: one
    fused kernel for the step."""
    return torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.base_lr * LR_MULTIPLIER,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        fused=fused or None,  # None: torch's default (foreach on CUDA), as False is not
    )


def task_and_kl_loss(model, teacher, x: torch.Tensor, y: torch.Tensor, weight: float):
    """Cross-entropy on the task head, plus `weight` x KL(teacher || model) on the ImageNet head
    when there is a teacher: the env's loss, written out plainly."""
    out = model(x)
    loss = F.cross_entropy(out.task_logits.float(), y)
    if teacher is None:
        return loss
    with torch.no_grad():
        t = teacher(x).imagenet_logits.float()
    kl = F.kl_div(
        out.imagenet_logits.float().log_softmax(1),
        t.log_softmax(1),
        reduction="batchmean",
        log_target=True,
    )
    return loss + weight * kl


class PlainLoop:
    """A bare PyTorch loop doing the env's work: the same model (a copy), data (its own
    persistent DataLoader of the same kind over the same training split), SGD settings, KL
    guidance against the same frozen teacher, BatchNorm mode (frozen: eval mode, as the env)
    and precision (autocast dtype, channels_last). Nothing waits for the device inside the
    loop. What it lacks: windows, per-group rates, the schedule, stage timers, loss sums."""

    def __init__(self, run, seed: int = 0) -> None:
        from trainables.engine import infinite_batches
        from trainables.errors import ConfigError
        from trainables.finetune import make_loader

        cfg, guidance = run.cfg, run.guidance
        if guidance.active and guidance.kind != "kl":
            raise ConfigError(f"the plain loop implements KL guidance only, not {guidance.kind}")
        self.cfg, self.device, self.precision = cfg, run.device, run.precision
        self.teacher = guidance.teacher if guidance.active else None
        self.model = copy.deepcopy(run.model)
        self.optimizer = window_sgd(self.model, cfg)
        train = run.splits.train
        self.loader = make_loader(
            train,
            cfg,
            cfg.batch_size,
            shuffle=True,
            drop_last=len(train) >= cfg.batch_size,
            generator=torch.Generator().manual_seed(seed),
        )
        self.batches = infinite_batches(self.loader)

    def __call__(self, iters: int) -> int:
        """Train `iters` iterations; returns the images seen."""
        model, teacher, p, w = self.model, self.teacher, self.precision, self.cfg.guidance_weight
        model.train(self.cfg.bn_mode == "train")
        images = 0
        for _ in range(iters):
            x, y = next(self.batches)
            x, y = p.inputs(x, self.device), y.to(self.device, non_blocking=True)
            with p.autocast():
                loss = task_and_kl_loss(model, teacher, x, y, w)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            images += len(y)
        return images


class BestLoop:
    """The fastest ResNet training loop this benchmark knows for the device, doing the same
    arithmetic as the plain loop (task cross-entropy + KL to the frozen teacher, frozen
    BatchNorm): one fixed random batch already on the device (no data loading), channels_last
    and bf16 autocast on CUDA (the run's precision on the CPU), a fused SGD step, and with
    `compile` the model and teacher under torch.compile."""

    def __init__(self, run, compile: bool = False, seed: int = 0) -> None:
        from trainables.precision import resolve_precision

        cfg, device = run.cfg, run.device
        self.cfg, self.device = cfg, device
        cuda = device.type == "cuda"
        self.precision = resolve_precision("bf16", "on", device) if cuda else run.precision
        self.model = self.precision.prepare(copy.deepcopy(run.model))
        # The run's frozen teacher, shared: on CUDA the run's 'auto' precision already made it
        # channels_last; on the CPU both loops use the run's precision.
        self.teacher = run.guidance.teacher if run.guidance.active else None
        self.optimizer = window_sgd(self.model, cfg, fused=True)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, generator=gen)
        y = torch.randint(0, run.splits.num_classes, (cfg.batch_size,), generator=gen)
        self.x, self.y = self.precision.inputs(x, device), y.to(device)
        self.forward = torch.compile(self.model) if compile else self.model
        self.teacher_forward = (
            torch.compile(self.teacher) if compile and self.teacher is not None else self.teacher
        )

    def __call__(self, iters: int) -> int:
        """Train `iters` iterations on the fixed batch; returns the images seen."""
        x, y, w = self.x, self.y, self.cfg.guidance_weight
        self.model.train(self.cfg.bn_mode == "train")
        for _ in range(iters):
            with self.precision.autocast():
                loss = task_and_kl_loss(self.forward, self.teacher_forward, x, y, w)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return iters * len(y)
