"""Results files read back as typed records: the fine-tuning config and the runs (RunSummary)
that an ablation.json or learning_curve.json holds. A file that is not one is a one-line
ConfigError naming the flag that pointed at it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.errors import ConfigError

if TYPE_CHECKING:
    from envs.summary import RunSummary
    from trainables.config import FinetuneConfig


@dataclass(frozen=True)
class RecordedRuns:
    """What an earlier results file recorded."""

    finetune_config: dict[str, Any] | None
    """The fine-tuning config as written (JSON values), None where the file has none."""
    runs: list[RunSummary]


def read_recorded(path: Path, where: str, what: str) -> RecordedRuns:
    """The config and runs of the results file `path`; `where` (the flag and path) and `what`
    (the kind of file expected) word the error."""
    from envs.summary import RunSummary

    try:
        payload = json.loads(path.read_text())
        raw, config = payload["runs"], payload.get("finetune_config")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: not {what} ({exc})") from None
    try:
        return RecordedRuns(config, [RunSummary.from_dict(r) for r in raw])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def baseline_runs(path: str) -> list[RunSummary]:
    """The baseline runs of the ablation.json at `path` (--compare-with)."""
    recorded = read_recorded(Path(path), f"--compare-with {path}", "an ablation.json")
    return [r for r in recorded.runs if r.kind == "baseline"]


def config_differences(recorded: RecordedRuns, cfg: FinetuneConfig) -> list[str]:
    """The fine-tuning config fields on which `recorded` and `cfg` differ (sorted; all of them
    when the file recorded no config). A `csg_stages` written as a string, before it became a
    list, reads as that list."""
    then = dict(recorded.finetune_config or {})
    if isinstance(then.get("csg_stages"), str):
        then["csg_stages"] = [s for s in then["csg_stages"].split(",") if s]
    now = json.loads(json.dumps(dataclasses.asdict(cfg)))
    missing = object()  # a field one side lacks differs, even from None
    return sorted(
        k for k in now.keys() | then.keys() if now.get(k, missing) != then.get(k, missing)
    )


def reusable_runs(
    path: str, cfg: FinetuneConfig, methods: Collection[str], seeds: Collection[int]
) -> list[RunSummary]:
    """The runs of the results file at `path` (--reuse) that a study of `methods` on `seeds`
    under `cfg` would run again: CPU runs are deterministic, so a finished study grows by its
    missing seeds only. A file run under another fine-tuning config is a one-line error, since
    its runs would not pair with the new ones."""
    recorded = read_recorded(Path(path), f"--reuse {path}", "a results file with runs")
    differ = config_differences(recorded, cfg)
    if differ:
        raise ConfigError(
            f"--reuse {path}: its runs had another fine-tuning config ({', '.join(differ)})"
        )
    return [r for r in recorded.runs if r.method in methods and r.seed in seeds]
