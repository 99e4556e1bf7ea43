"""torchvision ResNet-50 / ResNet-101 with ASG's seven layer groups.

Groups, as in ASG: conv1, bn1, layer1, layer2, layer3, layer4 and head (the new task head). The
pretrained ImageNet classifier `fc` becomes the frozen `imagenet_head` (see `grouped`).

Default weights come from torchvision's weights API, which reads the torch hub cache
`<torch.hub.get_dir()>/checkpoints/<file>`; the file is looked for first so that a missing one is a
clear `WeightsError` rather than a download attempt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from trainables.errors import WeightsError
from trainables.models.grouped import GroupedClassifier, load_checked, read_state_dict

if TYPE_CHECKING:
    import torchvision

RESNET_GROUPS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "head")
RESNETS = ("resnet50", "resnet101")  # the torchvision ResNets this project builds


def _arch(name: str):
    """(constructor, ImageNet weights) of torchvision's `name`. torchvision is imported here,
    not with this module: importing it costs every Ray worker that builds an env about 2 s of
    CPU, and only ResNet runs need it."""
    from torchvision.models import ResNet50_Weights, ResNet101_Weights, resnet50, resnet101

    return {
        "resnet50": (resnet50, ResNet50_Weights.IMAGENET1K_V1),
        "resnet101": (resnet101, ResNet101_Weights.IMAGENET1K_V1),
    }[name]


class ResNetClassifier(GroupedClassifier):
    group_names = RESNET_GROUPS
    map_stages = ("layer3", "layer4")  # CSG's stages

    def __init__(
        self, backbone: torchvision.models.ResNet, num_classes: int, name: str, head_hidden: int = 0
    ) -> None:
        imagenet_head = backbone.fc
        backbone.fc = nn.Identity()  # the backbone now returns pooled features [B, 2048]
        super().__init__(imagenet_head, num_classes, head_hidden)
        self.name = name
        self.backbone = backbone

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        b = self.backbone
        x = b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))
        layer3 = b.layer3(x)
        layer4 = b.layer4(layer3)
        return torch.flatten(b.avgpool(layer4), 1), {"layer3": layer3, "layer4": layer4}

    def _group_modules(self) -> dict[str, list[nn.Module]]:
        b = self.backbone
        return {
            "conv1": [b.conv1],
            "bn1": [b.bn1],
            "layer1": [b.layer1],
            "layer2": [b.layer2],
            "layer3": [b.layer3],
            "layer4": [b.layer4],
            "head": [self.task_head],
        }


def default_weights_file(name: str) -> Path:
    """Where torchvision's weights API looks for `name`'s ImageNet weights (torch hub cache)."""
    _, weights = _arch(name)
    filename = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def random_weights_file(name: str, folder: str | Path, seed: int = 0) -> Path:
    """`folder/<name>-random.pth`: a torchvision-layout state dict of `name` (ImageNet head
    included) with random values, written once. It stands in for ImageNet weights where they
    cannot be had (timings, smoke runs); nothing it trains says anything about accuracy."""
    arch, _ = _arch(name)
    path = Path(folder) / f"{name}-random.pth"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            torch.save(arch(weights=None).state_dict(), path)
    return path


def _load_default(net: nn.Module, name: str) -> None:
    _, weights = _arch(name)
    path = default_weights_file(name)
    if not path.is_file():
        raise WeightsError(
            f"ImageNet weights for {name} not found: put {path.name} ({weights.url}) "
            f"in the folder {path.parent}, or pass --weights FILE"
        )
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # corrupt or truncated cache file
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise WeightsError(f"cannot read weights file {path}: {detail}") from e
    load_checked(net, state, str(path), name)


def build_resnet(
    name: str,
    num_classes: int,
    pretrained: bool = True,
    weights: str | Path | None = None,
    head_hidden: int = 0,
) -> ResNetClassifier:
    """`name` is "resnet50" or "resnet101"; `weights` is a torchvision-layout state dict file."""
    constructor, _ = _arch(name)
    net = constructor(weights=None)  # random init; overwritten below when pretrained
    if weights is not None:
        load_checked(net, read_state_dict(weights), str(weights), name)
    elif pretrained:
        _load_default(net, name)
    model = ResNetClassifier(net, num_classes, name, head_hidden)
    model.set_bn_momentum()
    return model
