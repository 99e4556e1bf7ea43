"""One finished fine-tuning run in one shape, from the env's last step to every results table.

- `EndOfRun`: what the env adds to its last step's `info` when it reports real-test results
  (the real split, every proxy split, ImageNet retention on photos, feature energy).
- `RunSummary`: a whole run as reports read it: who ran (method, kind, seed), the `EndOfRun`
  figures, the proxy and return the controller saw, and the multipliers it applied.

`controllers.rollout.run_episode` returns a `RunSummary`; the Tune trainable reports the
`EndOfRun` keys with its last result, `controllers.tune_runs.collect` rebuilds a `RunSummary`
from each trial, results files hold `RunSummary.to_dict()` per run, and `RunSummary.from_dict`
reads them back (resuming, comparing with an earlier file).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

NAN = math.nan


@dataclass(frozen=True)
class EndOfRun:
    """Reported once, at a run's end: none of it ever feeds the reward."""

    test_acc: float
    """Real-target mean per-class accuracy."""
    test_overall_acc: float
    proxy_accs: dict[str, float]
    """Mean per-class accuracy on every proxy split the data offers."""
    proxy_nlls: dict[str, float]
    test_feature_energy: float = NAN
    """Hyperspherical energy of the normalised real-test features (CSG's diagnostic)."""
    imagenet_top1: float = NAN
    """Agreement of the ImageNet head with the frozen pretrained model on natural photos."""
    imagenet_top5: float = NAN
    imagenet_kl: float = NAN

    def to_info(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


END_OF_RUN_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EndOfRun))
SCALAR_END_KEYS: tuple[str, ...] = tuple(
    k for k in END_OF_RUN_KEYS if k not in ("proxy_accs", "proxy_nlls")
)


@dataclass(frozen=True)
class RunSummary:
    method: str
    kind: str
    """'learned', 'baseline' or 'reference' (see controllers.spec.ControllerSpec)."""
    seed: int
    proxy_acc: float
    """Final accuracy on the proxy split that fed the reward."""
    episode_return: float
    diverged: bool
    wall_s: float
    test_acc: float = NAN
    test_overall_acc: float = NAN
    proxy_accs: dict[str, float] = field(default_factory=dict)
    proxy_nlls: dict[str, float] = field(default_factory=dict)
    test_feature_energy: float = NAN
    imagenet_top1: float = NAN
    imagenet_top5: float = NAN
    imagenet_kl: float = NAN
    initial_proxy_acc: float = NAN
    window_s: float = NAN
    """Mean wall time of a window's SGD (and guidance) iterations (the env's `window_seconds`)."""
    guidance_pass_s: float = NAN
    """Mean per window of the guidance's extra forward passes (teacher, CSG's key encoder): the
    env's and Tune's `teacher_seconds`; reports read it under this name only."""
    multipliers: list[dict[str, float]] = field(default_factory=list)
    """The per-group multipliers applied at each window: the controller's behaviour."""
    wise_alpha: float = NAN
    """The WiSE-FT alpha the run ended at, picked on the proxy (`--wise-alphas`; nan: off)."""

    def to_dict(self) -> dict[str, Any]:
        """The run as results files hold it (one JSON object per run)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """A run read back from `to_dict()` (a results file): fields a file written before they
        existed may lack take their defaults; a key that is not a field, or a missing field
        that has no default, is a ValueError naming it."""
        if not isinstance(d, dict):
            raise ValueError(f"not a RunSummary: a {type(d).__name__}, not a JSON object")
        unknown = sorted(set(d) - set(_FIELD_NAMES))
        if unknown:
            raise ValueError(
                f"not a RunSummary: unknown key(s) {unknown} (fields: {', '.join(_FIELD_NAMES)})"
            )
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ValueError(f"not a RunSummary: missing key(s) {missing}")
        return cls(**copy.deepcopy(d))  # shares no dict or list with `d`

    @classmethod
    def from_end(cls, end: dict[str, Any], **fields: Any) -> RunSummary:
        """A summary from a run's last `info` (or last Tune result) holding `EndOfRun` keys,
        and the fields only the caller knows (method, kind, seed, ...)."""
        known = {k: end[k] for k in END_OF_RUN_KEYS if k in end}
        return cls(**known, **fields)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunSummary))
_REQUIRED: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(RunSummary)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
