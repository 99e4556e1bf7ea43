"""`--variant NAME FIELD=VALUE ...` into the benchmark configurations the study compares."""

from __future__ import annotations

import dataclasses

from controllers.static_study import Variant
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError


def parse_variants(base: FinetuneConfig, specs: list[list[str]] | None) -> list[Variant]:
    """Each spec is a name, then config fields over `base` (the preset and flags); no specs:
    one variant, "config", the base itself. One-line ConfigErrors naming --variant."""
    if not specs:
        return [Variant("config", base)]
    out = [Variant(name, base.replace(**_overrides(base, name, a))) for name, *a in specs]
    if len({v.name for v in out}) != len(out):
        raise ConfigError("--variant names must differ")
    return out


def _overrides(base: FinetuneConfig, name: str, assignments: list[str]) -> dict[str, object]:
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    overrides: dict[str, object] = {}
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--variant {name}: {a!r} is not <config field>=<value>")
        kind = type(getattr(base, key))
        if kind is bool:
            overrides[key] = value.lower() in ("1", "true", "yes", "on")
            continue
        try:
            # None and lists (csg_stages=layer3,layer4): the string, which the config reads.
            overrides[key] = value if kind in (type(None), tuple) else kind(value)
        except ValueError:
            raise ConfigError(f"--variant {name}: {a!r}: not a {kind.__name__}") from None
    return overrides
