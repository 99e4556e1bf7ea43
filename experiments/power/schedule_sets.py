"""The named schedule sets of `--schedules`, and `--schedules` itself into a list of schedules."""

from __future__ import annotations

from collections.abc import Sequence

from controllers.static_study import Variant
from trainables.errors import ConfigError

SCHEDULE_SETS: dict[str, dict[str, list[str]]] = {
    # Two in-range schedules that differ only in the backbone's rate (x2).
    "pair": {
        "log": ["backbone:0.1,head:1", "backbone:0.05,head:1"],
        "linear": ["backbone:0.2,head:1", "backbone:0.1,head:1"],
    },
    # The landscape: a uniform rate swept up to the cliff, backbone x head, early x late x head
    # (10 schedules: 20 seeds of each take about 70 minutes on 2 cores).
    "landscape": {
        "log": [
            *(f"all:{m}" for m in (0.05, 0.1, 0.2, 0.5)),
            *(f"backbone:{b},head:1" for b in (0.05, 0.1)),
            *(f"backbone:0.1,head:{h}" for h in (0.2, 0.5)),
            "backbone:0.05,head:0.2",
            "early:0.02,late:0.1,head:1",
        ],
        "linear": [*(f"all:{m}" for m in (0.1, 0.2, 0.3, 0.5, 1))],
    },
}


def resolve_schedules(text: str, variants: Sequence[Variant]) -> list[str]:
    """A named set (at the variants' --rate-levels) or ';'-separated schedules; at least two
    schedules unless there are two variants to compare."""
    if text in SCHEDULE_SETS:
        levels = {v.config.rate_levels for v in variants}
        if len(levels) > 1:
            raise ConfigError(f"--schedules {text}: the variants use different --rate-levels")
        return SCHEDULE_SETS[text][levels.pop()]
    found = [s.strip() for s in text.split(";") if s.strip()]
    if len(found) < 2 and len(variants) < 2:
        raise ConfigError("--schedules needs at least two schedules (or two --variant)")
    return found
