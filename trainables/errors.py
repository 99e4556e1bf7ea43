"""User-facing errors: each one is printed as a single line by the command-line scripts."""


class ASGError(Exception):
    """Base class for input and configuration errors that a user can fix."""


class DataError(ASGError):
    """A dataset folder, image list, image file or label is missing or malformed."""


class WeightsError(ASGError):
    """A pretrained weights file is missing, unreadable or for another architecture."""


class ConfigError(ASGError):
    """A flag or configuration value is invalid."""
