"""The skeleton every experiment script repeats, in one place: check the inputs (data, model,
weights, a saved policy to deploy) -> join or start Ray -> make the output folder -> record the
command. `start_study` does these in that order, so that bad input fails in one line before Ray
starts and a refused cluster writes nothing; the script then runs its story and writes its
results into `Study.out`.

`StudyFlags` are the flags every script that runs fine-tuning trials shares (--address,
--concurrency, --cpus-per-trial, --gpus-per-trial, --output-dir, --resume); `parse_study` reads
them beside the script's own flags and the fine-tuning run's, with tyro.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import tyro

from trainables.config import PRESETS, FinetuneConfig, PresetName
from trainables.entry import Flat, command_line, parse_args, preset_from_argv, script_doc

if TYPE_CHECKING:
    from controllers.tune_runs import TrialResources

T = TypeVar("T")
S = TypeVar("S", bound="StudyFlags")


@dataclass(frozen=True)
class RayRequest:
    """What a study asks of Ray (see `controllers.cluster.start_ray`): the cluster to join, and
    `workers` x (`cpus_per_worker`, `gpus_per_worker`) that must fit in it."""

    address: str | None
    workers: int
    cpus_per_worker: float = 1
    gpus_per_worker: float = 0
    flag: str = "--concurrency"
    """The option that sets `workers`, named by the one-line error when they do not fit."""
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"


@dataclass(frozen=True)
class StudyFlags:
    """Cluster, output and resume: the flags every trial-running script shares."""

    address: str | None = None
    """Ray cluster to join: 'auto' or host:port. Without it: the cluster RAY_ADDRESS names (as
    under `ray job submit --working-dir .`) or that `ray start` left on this machine, else a
    local Ray."""
    concurrency: int = 2
    """Fine-tuning runs at once."""
    cpus_per_trial: float = 1
    """CPUs per fine-tuning run."""
    gpus_per_trial: float = 0
    """GPUs per fine-tuning run (fractions share a GPU)."""
    output_dir: str = "runs/study"
    """Results and Tune logs."""
    resume: bool = False
    """Continue an interrupted run."""

    def ray(self, workers: int | None = None, flag: str = "--concurrency") -> RayRequest:
        """The fine-tuning trials' request (`workers`: more than --concurrency, for a script
        whose env runners need more; `flag` then names their option)."""
        n = self.concurrency if workers is None else workers
        return RayRequest(self.address, n, self.cpus_per_trial, self.gpus_per_trial, flag)

    def resources(self) -> TrialResources:
        from controllers.tune_runs import TrialResources

        return TrialResources(self.cpus_per_trial, self.gpus_per_trial, self.concurrency)


PRESET_HELP = (
    "Named configuration whose values are the defaults every other flag overrides: tiny (smoke "
    "tests, minutes), embedded (the offline digits benchmark), short (its meta-training twin), "
    "visda (VisDA-17 with ResNet-101, needs --data-root and a GPU)."
)


def parse_study(
    argv: Sequence[str] | None,
    doc: str | None,
    own: T,
    title: str,
    flags: S,
) -> tuple[str, FinetuneConfig, T, S]:
    """(preset, fine-tuning config, the script's own flags, the study flags) of a script whose
    flags are `--preset`, one per field of the dataclass instance `own` (its defaults), the
    study flags (defaults `flags`: a StudyFlags, or a subclass whose fields' docstrings word
    them the script's own way) and one per FinetuneConfig field, all parsed by tyro from one
    arguments dataclass. `title` names the group of the script's own flags in --help. No side
    effects."""
    preset = preset_from_argv(argv)
    args_cls = dataclasses.make_dataclass(
        "Args",
        [
            (title.replace(" ", "_").replace("-", "_"), Flat[type(own)]),  # type: ignore[valid-type]
            ("study", Flat[type(flags)]),  # type: ignore[valid-type]
            ("run", Flat[FinetuneConfig]),
            ("preset", Annotated[PresetName, tyro.conf.arg(help=PRESET_HELP)], "embedded"),
        ],
        frozen=True,
    )
    default = args_cls(own, flags, PRESETS[preset], preset)
    args = parse_args(args_cls, argv, default, script_doc(doc))
    own_args = getattr(args, dataclasses.fields(args_cls)[0].name)
    return args.preset, args.run, own_args, args.study


@dataclass(frozen=True)
class Study:
    """A started study: what its script needs to run and to write its results."""

    out: Path
    """The output folder (made)."""
    command: str
    """The command that reproduces the run, as results files record it."""
    policy_encoding: str | None
    """The action encoding of the saved policy the study deploys (checked), if any."""
    t0: float
    """`time.perf_counter()` when the study started, before Ray."""

    @property
    def tune(self) -> Path:
        """Where Tune keeps the study's experiments (checkpoints, logs)."""
        return self.out / "tune"

    def elapsed(self) -> float:
        """Seconds since the study started."""
        return time.perf_counter() - self.t0


def start_study(
    script: str,
    argv: Sequence[str] | None,
    cfg: FinetuneConfig,
    ray: RayRequest,
    output_dir: str,
    deploys: str | None = None,
) -> Study:
    """Check the inputs of `cfg` (and the saved policy folder `deploys`, against its model and
    rate levels), join or start Ray for `ray`, make `output_dir` and record the command of
    `script` (its path from the repository root) with `argv`. Every check raises a one-line
    ASGError before Ray starts; nothing is written until Ray is up."""
    from controllers.cluster import start_ray
    from trainables.preflight import check_inputs

    check_inputs(cfg)
    encoding = None
    if deploys:  # after the input checks, which name an unknown --model
        from controllers.saved_policy import check_deployable
        from trainables.models import MODEL_GROUPS

        encoding = check_deployable(deploys, MODEL_GROUPS[cfg.model], cfg.rate_levels)
    out = Path(output_dir).expanduser().resolve()
    t0 = time.perf_counter()
    start_ray(
        ray.address,
        ray.workers,
        ray.cpus_per_worker,
        ray.gpus_per_worker,
        dashboard=ray.dashboard,
        dashboard_host=ray.dashboard_host,
        flag=ray.flag,
    )
    out.mkdir(parents=True, exist_ok=True)
    return Study(out, command_line(script, argv), encoding, t0)
