"""A second view of a training batch for contrastive guidance: CSG's key view.

CSG feeds its frozen key encoder an independently augmented copy of each image, RandAugment with
one operation at magnitude 6. Batches here are already ImageNet-normalised float tensors, so a
view is made by undoing the normalisation, augmenting each image as uint8, and normalising again.
Randomness comes from torch's global generator, which a run seeds at reset: views reproduce.
"""

from __future__ import annotations

import torch

from trainables.imagenet import IMAGENET_MEAN, IMAGENET_STD


class RandAugmentView:
    """`view(x)`: RandAugment(num_ops, magnitude) applied image by image to a normalised batch."""

    def __init__(self, num_ops: int = 1, magnitude: int = 6) -> None:
        from torchvision.transforms import v2  # here: only CSG's key view needs torchvision

        self.augment = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        pixels = ((x.float() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
        views = torch.stack([self.augment(img) for img in pixels])
        out = (views.float() / 255 - mean) / std
        return out.to(x.dtype).contiguous(memory_format=_format_of(x))


def _format_of(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format
