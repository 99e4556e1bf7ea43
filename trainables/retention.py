"""ImageNet-knowledge retention: does the fine-tuned model's ImageNet head still agree with the
frozen pretrained model on real natural photos that are neither training nor target data?

The photos are scikit-image's bundled samples (no download), each cut into five crops (four
corners and the centre) and resized to the run's input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainables.imagenet import IMAGENET_MEAN, IMAGENET_STD

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


def natural_images(image_size: int) -> torch.Tensor:
    """Normalised float tensor [N, 3, image_size, image_size] of crops of the sample photos."""
    from skimage import data

    crops = []
    for name in PHOTOS:
        img = torch.as_tensor(np.asarray(getattr(data, name)()), dtype=torch.float32) / 255.0
        x = img.permute(2, 0, 1)[:3]
        h, w = x.shape[1:]
        s = min(h, w) * 2 // 3
        for top, left in (
            (0, 0),
            (0, w - s),
            (h - s, 0),
            (h - s, w - s),
            ((h - s) // 2, (w - s) // 2),
        ):
            crops.append(x[:, top : top + s, left : left + s])
    batch = torch.stack(
        [
            F.interpolate(
                c[None], size=image_size, mode="bilinear", align_corners=False, antialias=True
            )[0]
            for c in crops
        ]
    )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std


@dataclass(frozen=True)
class Retention:
    """How much of the pretrained model's ImageNet behaviour survives, on natural photos."""

    top1_agreement: float
    """Fraction of photos on which both ImageNet heads give the same top-1 class."""
    top5_overlap: float
    """Mean fraction of the reference's top-5 classes that are also in the model's top 5."""
    kl: float
    """Mean KL(reference || model) between the ImageNet-head softmaxes, in nats (0: intact)."""


@torch.inference_mode()
def retention(model: nn.Module, reference: nn.Module, images: torch.Tensor) -> Retention:
    """Compare the ImageNet heads of `model` and the frozen `reference` on `images`."""
    was_training = model.training
    model.eval()
    ours = model(images).imagenet_logits.float()
    theirs = reference(images).imagenet_logits.float()
    model.train(was_training)
    top1 = (ours.argmax(1) == theirs.argmax(1)).float().mean().item()
    our5, their5 = ours.topk(5, dim=1).indices, theirs.topk(5, dim=1).indices
    overlap = (our5[:, :, None] == their5[:, None, :]).any(dim=2).float().mean().item()
    kl = F.kl_div(
        ours.log_softmax(1), theirs.log_softmax(1), reduction="batchmean", log_target=True
    ).item()
    return Retention(top1, overlap, kl)
