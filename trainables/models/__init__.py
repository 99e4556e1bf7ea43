"""ImageNet classifiers with named layer groups: `build_model(name, num_classes, ...)`."""

from trainables.models.efficientnet_lite import EFFICIENTNET_GROUPS, EfficientNetLiteClassifier
from trainables.models.grouped import (
    BN_MOMENTUM,
    IMAGENET_MEAN,
    IMAGENET_STD,
    GroupedClassifier,
    ModelOutput,
    imagenet_normalization,
)
from trainables.models.registry import MODEL_GROUPS, MODEL_NAMES, build_model
from trainables.models.resnet import RESNET_GROUPS, ResNetClassifier, default_weights_file

__all__ = [
    "BN_MOMENTUM",
    "EFFICIENTNET_GROUPS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_GROUPS",
    "MODEL_NAMES",
    "RESNET_GROUPS",
    "EfficientNetLiteClassifier",
    "GroupedClassifier",
    "ModelOutput",
    "ResNetClassifier",
    "build_model",
    "default_weights_file",
    "imagenet_normalization",
]
