"""What a method in a results table is: a typed controller specification.

Every fine-tuning run is driven by one `ControllerSpec`. Its `kind` says how the run may be
compared, so no report infers it from a name:

- `learned`: a policy trained by RL (deployed from an exported policy folder);
- `baseline`: a non-learned schedule that a learned controller must beat (fixed multipliers,
  the base-rate schedules, random, PBT);
- `reference`: a bound, not a competitor (training from scratch, the real-trained oracle).

Specs travel through Ray Tune as plain dicts (`as_config` / `from_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from trainables.errors import ConfigError

KINDS = ("learned", "baseline", "reference")

HAND_TUNED_BACKBONE = 0.1
"""The usual fine-tuning recipe (ASG's baseline): backbone at 0.1 x the head's rate."""


@dataclass(frozen=True)
class ControllerSpec:
    method: str
    """Row label in results tables."""
    kind: str
    """learned, baseline or reference (see the module docstring)."""
    multipliers: tuple[float, ...] | None = None
    """Fixed multipliers: one value for every group, or one per group (the head last)."""
    backbone_head: tuple[float, float] | None = None
    """Fixed multipliers as (every group but the head, the head)."""
    random: bool = False
    """A uniformly random level per group, drawn anew every window (seeded by the run)."""
    stream: int = 0
    """Random controllers: which random stream (distinct streams give distinct schedules on
    the same run seed)."""
    pbt: bool = False
    """Population-based training mutates the multipliers (see controllers.tune_runs.run_pbt)."""
    policy_dir: str | None = None
    """An exported policy folder (see controllers.saved_policy)."""
    action_encoding: str = "multidiscrete"
    greedy: bool = False
    """Learned policies: act greedily instead of sampling (ASG samples its actions)."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """FinetuneConfig overrides for this method's runs (a base schedule, guidance off, ...)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"controller {self.method!r}: kind {self.kind!r} not in {KINDS}")
        drivers = [
            self.multipliers is not None,
            self.backbone_head is not None,
            self.random,
            self.pbt,
            self.policy_dir is not None,
        ]
        if sum(drivers) != 1:
            raise ConfigError(f"controller {self.method!r}: give exactly one way to pick rates")
        if (self.policy_dir is not None) != (self.kind == "learned"):
            raise ConfigError(f"controller {self.method!r}: learned iff it has a policy_dir")

    def fixed_multipliers(self, num_groups: int) -> list[float] | None:
        """The per-group multipliers of a fixed schedule, else None."""
        if self.backbone_head is not None:
            backbone, head = self.backbone_head
            return [float(backbone)] * (num_groups - 1) + [float(head)]
        if self.multipliers is None:
            return None
        if len(self.multipliers) == 1:
            return [float(self.multipliers[0])] * num_groups
        if len(self.multipliers) != num_groups:
            raise ConfigError(
                f"controller {self.method!r}: {len(self.multipliers)} multipliers for "
                f"{num_groups} layer groups"
            )
        return [float(m) for m in self.multipliers]

    def as_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> ControllerSpec:
        d = dict(d)
        for key in ("multipliers", "backbone_head"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def with_(self, **changes: Any) -> ControllerSpec:
        return dataclasses.replace(self, **changes)


def uniform(m: float, **finetune: Any) -> ControllerSpec:
    """One multiplier `m` for every group at every window, on the constant base rate."""
    return ControllerSpec(f"uniform {m:g}", "baseline", multipliers=(m,), finetune=finetune)


_HAND = (HAND_TUNED_BACKBONE, 1.0)
BASELINES: dict[str, ControllerSpec] = {
    "constant": ControllerSpec("constant", "baseline", multipliers=(1.0,)),
    "hand_tuned": ControllerSpec("hand_tuned", "baseline", backbone_head=_HAND),
    "cosine": ControllerSpec(
        "cosine", "baseline", backbone_head=_HAND, finetune={"schedule": "cosine"}
    ),
    "step": ControllerSpec("step", "baseline", backbone_head=_HAND, finetune={"schedule": "step"}),
    "random": ControllerSpec("random", "baseline", random=True),
    "pbt": ControllerSpec("pbt", "baseline", pbt=True),
}
"""The named non-learned controllers. On the constant base rate: `constant` (every group at
multiplier 1, ASG's "large rate on all layers") and `hand_tuned` (backbone 0.1, head 1). `cosine`
and `step` keep the hand-tuned multipliers under a cosine or step base schedule. `uniform <m>`
rows (see `uniform`) form the 1-D sweep of a single rate."""


def baseline(name: str) -> ControllerSpec:
    """A named baseline, or `uniform@<m>` for the uniform multiplier m."""
    if name.startswith("uniform@"):
        try:
            m = float(name.split("@", 1)[1])
        except ValueError:
            m = -1.0
        if not 0.0 <= m <= 1.0:
            raise ConfigError(f"baseline {name!r}: uniform@<m> needs 0 <= m <= 1")
        return uniform(m)
    if name not in BASELINES:
        choices = ", ".join([*BASELINES, "uniform@<m>"])
        raise ConfigError(f"unknown baseline {name!r}; choose from: {choices}")
    return BASELINES[name]


def check_levels(spec: ControllerSpec, cfg: Any, flag: str) -> None:
    """A fixed baseline's multipliers must be levels of the run it gets (`cfg`, a
    FinetuneConfig, with the spec's own overrides applied): a discrete action can only send
    levels, and a silent rounding would run another schedule. One-line ConfigError naming
    `flag`; an unknown model is left to the input checks, which name it."""
    from envs.actions import levels_of
    from trainables.models import MODEL_GROUPS

    try:
        run_cfg = cfg.replace(**spec.finetune)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    if spec.random or spec.pbt or spec.policy_dir is not None:
        return
    if run_cfg.model not in MODEL_GROUPS:
        return
    levels = levels_of(run_cfg.rate_levels)
    multipliers = spec.fixed_multipliers(len(MODEL_GROUPS[run_cfg.model]))
    off = [m for m in multipliers if not any(abs(m - lv) < 1e-12 for lv in levels)]
    if off:
        raise ConfigError(
            f"{flag}: baseline {spec.method!r}: multiplier {off[0]:g} is not a level of "
            f"--rate-levels {run_cfg.rate_levels} ({', '.join(f'{lv:g}' for lv in levels)})"
        )


def learned(method: str, policy_dir: str, encoding: str, greedy: bool = False) -> ControllerSpec:
    return ControllerSpec(
        method, "learned", policy_dir=policy_dir, action_encoding=encoding, greedy=greedy
    )
