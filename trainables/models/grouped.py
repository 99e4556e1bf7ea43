"""The classifier interface every model shares: named layer groups, two heads, one output type.

A `GroupedClassifier` wraps an ImageNet backbone and keeps two linear heads on its pooled
penultimate features:

- `imagenet_head`: the backbone's own pretrained 1000-way ImageNet classifier. Its parameters are
  FROZEN (`requires_grad=False`) in the student as in the teacher; the proxy-guidance KL term
  between the student's and a frozen teacher's ImageNet logits then trains only the backbone,
  pulling it towards features that stay ImageNet-consistent. So it belongs to no layer group.
- `task_head`: a new `TaskHead` for the target task (layer group "head"): one linear layer, or
  ASG's two, `Linear(features, 512) - ReLU - Linear(512, num_classes)` (`head_hidden=512`).

Every trainable parameter belongs to exactly one named layer group (`group_names`, shallow to
deep, ending with "head"); a controller sets one learning rate per group.

This module also holds the checks shared by the weight loaders (`read_state_dict`,
`load_checked`), which turn every failure into a one-line `WeightsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from trainables.errors import WeightsError, load_failure
from trainables.imagenet import IMAGENET_MEAN, IMAGENET_STD

# Momentum for every BatchNorm layer. The EfficientNet port ships TensorFlow's 0.99 decay as
# PyTorch momentum 0.01, which leaves running statistics stale after a short fine-tune (eval
# accuracy collapses); 0.1 is PyTorch's (and torchvision ResNet's) default.
BN_MOMENTUM = 0.1


def imagenet_normalization() -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) of the RGB input normalisation, in [0, 1] pixel units, for every model here.

    torchvision's ResNets were trained with it; EfficientNet-Lite0 (trained in TensorFlow with
    (x - 127) / 128) classifies as well with it, so one input pipeline serves all models.
    """
    return IMAGENET_MEAN, IMAGENET_STD


class ModelOutput(NamedTuple):
    task_logits: Tensor  # [B, num_classes]
    imagenet_logits: Tensor  # [B, 1000]
    features: Tensor  # [B, D] pooled penultimate features (no dropout anywhere)
    maps: dict[str, Tensor] | None = None
    """Feature maps [B, C, H, W] of the `map_stages`, when asked for (contrastive guidance)."""


class TaskHead(nn.Module):
    """The new classifier on pooled features: `Linear(D, C)`, or with `hidden > 0` ASG's
    `Linear(D, hidden) - ReLU - Linear(hidden, C)`. `weight` and `bias` are the last layer's
    (what the controller's head statistics read, as ASG reads `fc_new[2].weight`)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        self.in_features, self.out_features = in_features, num_classes
        if hidden:
            self.layers = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.layers = nn.Sequential(nn.Linear(in_features, num_classes))

    @property
    def last(self) -> nn.Linear:
        return self.layers[-1]  # type: ignore[return-value]

    @property
    def weight(self) -> nn.Parameter:
        return self.last.weight

    @property
    def bias(self) -> nn.Parameter:
        return self.last.bias

    def reset_parameters(self) -> None:
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features)


class GroupedClassifier(nn.Module):
    """Backbone + frozen ImageNet head + new task head, with parameters in named layer groups.

    Subclasses set `group_names`, build `backbone`, and implement `forward_features` (images to
    pooled features [B, D]) and `_group_modules` (group name -> the modules it owns).
    """

    group_names: tuple[str, ...] = ()
    name: str = ""
    map_stages: tuple[str, ...] = ()
    """Stages whose (non-negative) feature maps `forward(x, with_maps=True)` returns; CSG's
    contrastive guidance uses them, the last two by default."""

    def __init__(self, imagenet_head: nn.Linear, num_classes: int, head_hidden: int = 0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_features = imagenet_head.in_features
        self.num_classes = num_classes
        self.imagenet_head = imagenet_head
        # Frozen: trained neither by the task loss nor by the KL term (see the module docstring).
        self.imagenet_head.requires_grad_(False)
        self.task_head = TaskHead(self.num_features, num_classes, head_hidden)

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _group_modules(self) -> dict[str, list[nn.Module]]:
        raise NotImplementedError

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(pooled features, {stage: feature map} for every name in `map_stages`)."""
        raise NotImplementedError

    def forward(self, x: Tensor, with_maps: bool = False) -> ModelOutput:
        if with_maps:
            features, maps = self.forward_maps(x)
        else:
            features, maps = self.forward_features(x), None
        return ModelOutput(self.task_head(features), self.imagenet_head(features), features, maps)

    @torch.no_grad()
    def map_channels(self) -> dict[str, int]:
        """Channel count of each of `map_stages`' feature maps (from one small forward pass)."""
        was_training = self.training
        self.eval()
        param = next(self.parameters())
        _, maps = self.forward_maps(torch.zeros(1, 3, 64, 64, device=param.device))
        self.train(was_training)
        return {k: v.shape[1] for k, v in maps.items()}

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by layer group, in `group_names` order; each appears once."""
        modules = self._group_modules()
        if tuple(modules) != self.group_names:
            raise RuntimeError(f"{self.name}: groups {tuple(modules)} != {self.group_names}")
        seen: set[int] = set()
        groups: dict[str, list[nn.Parameter]] = {}
        for group, mods in modules.items():
            params = []
            for module in mods:
                for p in module.parameters():
                    if p.requires_grad and id(p) not in seen:
                        seen.add(id(p))
                        params.append(p)
            groups[group] = params
        stray = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in seen]
        if stray:
            raise RuntimeError(f"{self.name}: trainable parameters in no layer group: {stray[:3]}")
        return groups

    def set_bn_momentum(self, momentum: float = BN_MOMENTUM) -> None:
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = momentum


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a weights file (torch.load, weights_only); any failure is a `WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, not a torch file, disallowed pickle
        raise WeightsError(f"cannot read weights file {path}: {load_failure(e)}") from e
    # Accept common checkpoint wrappers and DataParallel's "module." prefix.
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping) and len(obj) <= 3:
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        found = type(obj).__name__
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors ({found})")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def load_checked(module: nn.Module, state: Mapping[str, Tensor], source: str, arch: str) -> None:
    """Strictly load `state` into `module`, or raise a one-line `WeightsError` naming `source`.

    BatchNorm `num_batches_tracked` counters may be missing (older checkpoints lack them).
    """
    expected = module.state_dict()
    problem = None
    for key in expected:
        if key not in state and not key.endswith("num_batches_tracked"):
            problem = f"missing key '{key}'"
            break
    if problem is None:
        for key, value in state.items():
            if key not in expected:
                problem = f"unexpected key '{key}'"
                break
            if value.shape != expected[key].shape:
                problem = (
                    f"'{key}' has shape {list(value.shape)} in the file but "
                    f"{list(expected[key].shape)} in {arch}"
                )
                break
    if problem is not None:
        raise WeightsError(f"weights file {source} does not match {arch}: {problem}")
    module.load_state_dict(state, strict=False)
