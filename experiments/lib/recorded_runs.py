"""Results files read back as typed records: the fine-tuning config and the runs (RunSummary)
that an ablation.json or learning_curve.json holds. A file that is not one is a one-line
ConfigError naming the flag that pointed at it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.errors import ConfigError

if TYPE_CHECKING:
    from envs.summary import RunSummary


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
