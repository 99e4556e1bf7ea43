"""Running controllers as Ray Tune experiments: parallel trials, PBT, resume, readable progress.

Each experiment lives under `<storage>/<name>`. With `resume=True` an interrupted experiment is
restored from Tune's state and its trials' last checkpoints; without it, an existing experiment
folder is an error rather than something silently mixed into.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining

from controllers.atomic_storage import storage_filesystem
from controllers.spec import ControllerSpec
from controllers.tune_trainable import controller_trainable
from envs.actions import levels_of
from envs.summary import SCALAR_END_KEYS, RunSummary
from trainables.config import FinetuneConfig
from trainables.errors import ConfigError, DataError
from trainables.models import MODEL_GROUPS


@dataclasses.dataclass(frozen=True)
class TrialResources:
    cpus: float = 1
    gpus: float = 0
    concurrency: int = 2
    """Trials run at once."""

    def wrap(self, trainable):
        return tune.with_resources(trainable, {"cpu": self.cpus, "gpu": self.gpus})


class _Progress(tune.Callback):
    """One line per reported result instead of Tune's full status tables, and with `total`
    (fine-tuning runs: trials, or meta-training episodes) 'k of N' with the time left."""

    def __init__(self, total: int | None = None) -> None:
        self.total, self.done, self.t0 = total, 0, time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        line = progress_line(trial.config, result)
        episodes = result.get("env_runners", {}).get("num_episodes_lifetime")
        if self.total and episodes:  # an RLlib iteration: its runs so far
            line += "; " + runs_left(int(episodes), self.total, time.monotonic() - self.t0)
        print(f"[asg] {line}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        if self.total and "env_runners" not in (trial.last_result or {}):
            left = runs_left(self.done, self.total, time.monotonic() - self.t0)
            print(f"[asg] {left} ({trial_name(trial)} finished)", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        why = input_error_of(trial.get_error()) or f"see {trial.local_path}"
        print(f"[asg] trial {trial.trial_id} failed: {why}", flush=True)


def runs_left(done: int, total: int, elapsed_s: float) -> str:
    """'k of N runs, about M min left' (from the mean time per run so far in this process)."""
    left = elapsed_s / max(done, 1) * max(total - done, 0)
    return f"{done} of {total} runs, about {left / 60:.1f} min left"


def trial_name(trial) -> str:
    """A trial's readable name: what it runs (method and seed) and its id, for Tune's output,
    its folders and TensorBoard."""
    config = trial.config
    method = config.get("controller", {}).get("method", trial.trainable_name)
    seed = config.get("seed", "")
    name = re.sub(r"[^A-Za-z0-9.@+-]+", "_", f"{method}_seed{seed}").strip("_")
    return f"{name}_{trial.trial_id}"


_INPUT_ERROR_LINE = re.compile(
    r"(?:^|\s)(?:trainables\.errors\.)?(?:ASGError|DataError|WeightsError|ConfigError): (.+)",
    re.MULTILINE,
)


def input_error_of(error: BaseException | None) -> str | None:
    """The one-line message of the user-fixable input error (an ASGError raised in a worker)
    behind a failed trial, or None when something else failed it."""
    if error is None:
        return None
    found = _INPUT_ERROR_LINE.findall(str(error))
    return found[-1].strip() if found else None


class StopOnInputError(tune.Stopper):
    """Stops every trial once an env runner has recorded an input error in `error_file`
    (see `envs.input_errors`), and, through `done`, when `done(result)` says so."""

    def __init__(self, error_file: Path, done) -> None:
        self.error_file, self.done = error_file, done

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.error_file.exists() or self.done(result)

    def stop_all(self) -> bool:
        return self.error_file.exists()


def progress_callback(total: int | None = None) -> tune.Callback:
    return _Progress(total)


def progress_line(config: dict[str, Any], result: dict[str, Any]) -> str:
    nan = math.nan
    env = result.get("env_runners", {})
    if "num_episodes_lifetime" in env:  # an RLlib training iteration
        asg = {k.split("/", 1)[1]: v for k, v in env.items() if k.startswith("asg/")}
        return (
            f"meta-train iter {result['training_iteration']}: "
            f"{int(env['num_episodes_lifetime'])} runs, "
            f"return {env.get('episode_return_mean', nan):+.3f}, "
            f"proxy acc {asg.get('proxy_acc', nan):.3f}, "
            f"{result.get('time_total_s', nan):.0f}s"
        )
    method = config.get("controller", {}).get("method", "?")
    line = (
        f"{method} seed {config.get('seed')} window {result.get('window')}: "
        f"proxy acc {result.get('proxy_acc', nan):.3f}"
    )
    if result.get("done"):
        line += f", real test acc {result.get('test_acc', nan):.3f} (done)"
    return line


def make_tuner(trainable, storage: Path, name: str, resume: bool, **kwargs) -> tune.Tuner:
    """A new Tuner, or the interrupted one restored when `resume` and its state exists."""
    path = storage / name
    if resume and tune.Tuner.can_restore(str(path), storage_filesystem=storage_filesystem()):
        print(f"[asg] resuming {name} from {path}", flush=True)
        return tune.Tuner.restore(
            str(path),
            trainable,
            resume_unfinished=True,
            resume_errored=True,
            param_space=kwargs.get("param_space"),
            storage_filesystem=storage_filesystem(),
        )
    if not resume and path.exists() and any(path.iterdir()):
        raise ConfigError(
            f"{path} already holds a run: pass --resume to continue it, or another --output-dir"
        )
    return tune.Tuner(trainable, **kwargs)


def durable_run_config(
    storage: Path,
    name: str,
    checkpoint: tune.CheckpointConfig,
    total_runs: int | None = None,
    **kwargs: Any,
) -> tune.RunConfig:
    """A RunConfig whose experiment state reaches storage within about a second of each
    result, so a driver killed at any moment resumes from a recent checkpoint (Tune's defaults
    save it every 10+ s and sync it every 5 min). Every file reaches storage whole or not at
    all (`atomic_storage`): a kill during Tune's file-by-file copy leaves the previous
    version, never a truncated file that no resume can read."""
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "1"  # read when the Tuner starts
    return tune.RunConfig(
        name=name,
        storage_path=str(storage),
        storage_filesystem=storage_filesystem(),
        checkpoint_config=checkpoint,
        sync_config=tune.SyncConfig(sync_period=0),
        failure_config=tune.FailureConfig(max_failures=3),
        callbacks=[progress_callback(total_runs)],
        verbose=0,
        **kwargs,
    )


def trial_run_config(
    storage: Path, name: str, keep: int | None = 2, total_runs: int | None = None
) -> tune.RunConfig:
    return durable_run_config(storage, name, tune.CheckpointConfig(num_to_keep=keep), total_runs)


def run_controllers(
    controllers: list[ControllerSpec],
    seeds: list[int],
    cfg: FinetuneConfig,
    storage: Path,
    name: str,
    resources: TrialResources,
    resume: bool = False,
    done: Sequence[RunSummary] = (),
) -> list[RunSummary]:
    """One fresh fine-tuning run per (controller, seed), as parallel Tune trials: every
    method on the same seeds, so that reports can compare them pairwise. A PBT controller's
    runs are a population, an experiment of its own ('pbt', see `run_pbt`), run after.

    `done`: runs of an earlier study (ablation --reuse); only the (controller, seed) pairs it
    lacks run, and controllers that lack the same seeds run as one experiment (`name`, then
    `name_2`, ...). A PBT population is never grown member by member: it runs whole."""
    have = {(r.method, r.seed) for r in done}
    groups: dict[tuple[int, ...], list[ControllerSpec]] = {}
    for c in controllers:
        todo = tuple(s for s in seeds if (c.method, s) not in have)
        if todo and not c.pbt:
            groups.setdefault(todo, []).append(c)
    runs: list[RunSummary] = []
    for i, (todo, others) in enumerate(groups.items()):
        label = name if i == 0 else f"{name}_{i + 1}"
        runs += _fit_controller_trials(
            _Experiment(cfg, list(todo), storage, label, resources, resume),
            {"controller": tune.grid_search([c.as_config() for c in others])},
            # Reused actors keep their env between trials (see tune_trainable._env_for).
            tune_config=tune.TuneConfig(
                max_concurrent_trials=resources.concurrency, reuse_actors=True
            ),
        )
    for spec in controllers:
        if spec.pbt:
            runs += run_pbt(cfg, storage, resources, seeds, resume, spec=spec)
    return runs


class MemberPBT(PopulationBasedTraining):
    """Tune's PBT, with each member keeping its identity: a member that copies a donor's
    weights keeps its own seed (Tune would copy the donor's whole config), and no member
    copies at a run's last window, where nothing is left to train and a copy would only
    report the donor's finished run a second time."""

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:
        if result.get("done"):
            return self.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def _get_new_config(self, trial, trial_to_clone) -> tuple[dict, dict]:
        config, operations = super()._get_new_config(trial, trial_to_clone)
        return {**config, "seed": trial.config["seed"]}, operations


def run_pbt(
    cfg: FinetuneConfig,
    storage: Path,
    resources: TrialResources,
    seeds: list[int],
    resume: bool = False,
    name: str = "pbt",
    spec: ControllerSpec | None = None,
) -> list[RunSummary]:
    """Population-based training over the per-group multipliers, on proxy-validation accuracy.

    One member per evaluation seed (distinct, fixed seeds: the same ones every other method
    runs on). Every `windows // 4` windows the worst quarter copies the weights of the best and
    perturbs its multipliers. Each member counts as one run, under its own seed.
    """
    spec = spec or ControllerSpec("pbt", "baseline", pbt=True)
    levels = [float(x) for x in levels_of(cfg.rate_levels)]
    groups = MODEL_GROUPS[cfg.model]
    interval = max(1, cfg.windows // 4)
    scheduler = MemberPBT(
        time_attr="training_iteration",  # one iteration = one window
        perturbation_interval=interval,
        hyperparam_mutations={"pbt_multipliers": {g: levels for g in groups}},
    )
    return _fit_controller_trials(
        _Experiment(cfg, seeds, storage, name, resources, resume),
        {
            "controller": spec.as_config(),
            "pbt_multipliers": {g: tune.choice(levels) for g in groups},
            "checkpoint_every": interval,
        },
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            metric="proxy_acc",
            mode="max",
            num_samples=1,
            max_concurrent_trials=resources.concurrency,
        ),
        # A member may restore a donor's checkpoint after the donor has moved on (it waits for
        # a free slot), so none is deleted while the population runs. Members checkpoint only
        # at perturbation boundaries and at the end (`checkpoint_every`), which bounds the
        # count at windows / interval + 1; all but the newest go once the run has finished.
        keep=None,
        prune_after=True,
    )


@dataclasses.dataclass(frozen=True)
class _Experiment:
    """What every experiment of fine-tuning trials has: the run's config, the seeds (one trial
    each, per controller), where it lives and how it runs."""

    cfg: FinetuneConfig
    seeds: list[int]
    storage: Path
    name: str
    resources: TrialResources
    resume: bool


def _fit_controller_trials(
    exp: _Experiment,
    space: dict[str, Any],
    tune_config: tune.TuneConfig,
    keep: int | None = 2,
    prune_after: bool = False,
) -> list[RunSummary]:
    """Fits `space` (the controller and what else varies) on every seed of `exp`."""
    controllers = space["controller"]
    grid = controllers.get("grid_search") if isinstance(controllers, dict) else None
    total = len(exp.seeds) * (len(grid) if isinstance(grid, list) else 1)
    param_space = {
        "finetune": dataclasses.asdict(exp.cfg),
        **space,
        "seed": tune.grid_search(list(exp.seeds)),
    }
    tuner = make_tuner(
        exp.resources.wrap(controller_trainable),
        exp.storage,
        exp.name,
        exp.resume,
        param_space=param_space,
        # A finished trial's actor runs the next one: a new actor first spends seconds of CPU
        # importing torch and the project; every run seeds and builds its own env regardless.
        tune_config=dataclasses.replace(
            tune_config,
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=trial_run_config(exp.storage, exp.name, keep, total_runs=total),
    )
    grid = tuner.fit()
    runs = collect(grid)
    if prune_after:
        for result in grid:
            if not result.error:
                keep_newest_checkpoint(Path(result.path))
    errors = [e for e in (input_error_of(r.error) for r in grid) if e]
    if errors:  # the same bad input would fail every retry: stop and say what it is
        raise DataError(
            f"{errors[0]} (finished runs are kept; fix the input and run again with --resume)"
        )
    return runs


def keep_newest_checkpoint(trial_dir: Path) -> None:
    """Delete all but the newest `checkpoint_*` folder of a finished trial."""
    found = sorted(trial_dir.glob("checkpoint_*"), key=lambda p: p.name)
    for old in found[:-1]:
        shutil.rmtree(old, ignore_errors=True)


def collect(grid: tune.ResultGrid) -> list[RunSummary]:
    """Finished trials as `RunSummary`s: final accuracies and the per-window multipliers;
    unfinished or failed trials are named and left out."""
    runs: list[RunSummary] = []
    for result in grid:
        if result.error or not result.metrics or not result.metrics.get("done"):
            why = input_error_of(result.error) or ("failed" if result.error else "unfinished")
            print(f"[asg] trial left out ({why}): {result.path}", flush=True)
            continue
        runs.append(summary_of(result))
    return runs


def summary_of(result: tune.Result) -> RunSummary:
    """The `RunSummary` of one finished trial, from its last result and its history."""
    m, df = result.metrics, result.metrics_dataframe
    spec = ControllerSpec.from_config(result.config["controller"])
    cols = [c for c in df.columns if c.startswith("multiplier/")]
    schedule = [{c.split("/", 1)[1]: float(row[c]) for c in cols} for _, row in df.iterrows()]
    # A PBT member that exploits takes the donor's whole config, its seed included; the
    # member keeps the seed it started with (its first result's), so pairing holds.
    seed = int(df["seed"].iloc[0]) if "seed" in df.columns else int(result.config["seed"])

    def by_split(prefix: str) -> dict[str, float]:
        return {k.split("/", 1)[1]: float(v) for k, v in m.items() if k.startswith(prefix)}

    def column_mean(name: str) -> float:
        return float(df[name].mean()) if name in df.columns else math.nan

    return RunSummary.from_end(
        {k: float(m[k]) for k in SCALAR_END_KEYS if k in m}
        | {"proxy_accs": by_split("proxy_acc/"), "proxy_nlls": by_split("proxy_nll/")},
        method=spec.method,
        kind=spec.kind,
        seed=seed,
        proxy_acc=float(m["proxy_acc"]),
        episode_return=float(m["episode_return"]),
        diverged=bool(m["diverged"]),
        wall_s=float(m.get("time_total_s", math.nan)),
        window_s=column_mean("window_seconds"),
        guidance_pass_s=column_mean("teacher_seconds"),
        multipliers=schedule,
        wise_alpha=float(m.get("wise_alpha", math.nan)),
    )
