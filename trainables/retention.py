"""ImageNet-knowledge retention: does the fine-tuned model's ImageNet head still agree with the
frozen pretrained model on real natural photos that are neither training nor target data?

The photos are scikit-image's bundled samples (no download), each cut into five crops (four
corners and the centre) and resized to the run's input size.
"""

from __future__ import annotations

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


@torch.inference_mode()
def imagenet_agreement(model: nn.Module, reference: nn.Module, images: torch.Tensor) -> float:
    """Fraction of images on which both models' ImageNet heads give the same top-1 class."""
    was_training = model.training
    model.eval()
    ours = model(images).imagenet_logits.argmax(1)
    theirs = reference(images).imagenet_logits.argmax(1)
    model.train(was_training)
    return (ours == theirs).float().mean().item()
