"""How tensors are laid out and computed on the run's device: bf16 autocast and channels_last.

Both are named options (`--amp`, `--channels-last`); 'auto' turns them on for CUDA, where they
pay (tensor cores, cuDNN's NHWC kernels), and off on the CPU, where bf16 autocast works but is
usually slower. Master weights, optimizer state and losses stay float32 either way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    autocast_dtype: torch.dtype | None
    """dtype of autocast regions (None: no autocast, float32 throughout)."""
    channels_last: bool
    """Model and 4-d inputs in NHWC memory format."""
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def inputs(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return model


def resolve_precision(amp: str, channels_last: str, device: torch.device) -> Precision:
    """`amp`: 'auto' | 'bf16' | 'off'; `channels_last`: 'auto' | 'on' | 'off'."""
    cuda = device.type == "cuda"
    use_amp = amp == "bf16" or (amp == "auto" and cuda)
    nhwc = channels_last == "on" or (channels_last == "auto" and cuda)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels
    return Precision(torch.bfloat16 if use_amp else None, nhwc, device.type)
