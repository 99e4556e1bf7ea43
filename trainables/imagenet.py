"""ImageNet input normalisation: the one place its constants live.

torchvision's ResNets were trained with it; EfficientNet-Lite0 (trained in TensorFlow with
(x - 127) / 128) classifies as well with it, so one input pipeline serves every model here.
"""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
