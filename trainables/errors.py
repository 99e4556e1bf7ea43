"""User-facing errors: each one is printed as a single line by the command-line scripts."""


class ASGError(Exception):
    """Base class for input and configuration errors that a user can fix."""


class DataError(ASGError):
    """A dataset folder, image list, image file or label is missing or malformed."""


class WeightsError(ASGError):
    """A pretrained weights file is missing, unreadable or for another architecture."""


class ConfigError(ASGError):
    """A flag or configuration value is invalid."""


class ClusterError(ASGError):
    """Ray could not be started on this machine."""


def load_failure(exc: BaseException) -> str:
    """One line on why `torch.load(..., weights_only=True)` failed. PyTorch's own message for a
    refused file suggests weights_only=False, which is the one thing not to do with an
    untrusted file, so that case gets a plain description instead."""
    text = " ".join(str(exc).split())
    if text.startswith("Weights only load failed"):
        return "not a plain tensor file: corrupt, truncated, or holding pickled objects (refused)"
    return text[:300] or type(exc).__name__
