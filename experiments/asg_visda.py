"""ASG end to end on Ray: meta-train a layer-wise learning-rate policy with RLlib, deploy it in
fresh fine-tuning runs, and compare it with non-learned baselines on the same budget and seeds.

How to run:
    python experiments/asg_visda.py                   # embedded digits benchmark, 2-core CPU
    python experiments/asg_visda.py --preset tiny     # smoke run, a few minutes
    python experiments/asg_visda.py --preset visda --data-root /data/visda17 --address auto \
        --num-env-runners 8 --gpus-per-env-runner 0.5 --meta-episodes 200

What to expect: a table of real-target mean per-class accuracy per method (the learned policy,
hand-tuned and uniform 0.1 by default; --baselines adds constant, cosine, step, random, pbt),
each with its paired difference to the best baseline on the same seeds, plus results.json,
results.md, policy_schedule.png, TensorBoard logs and checkpoints under --output-dir. About 10
minutes on 2 CPU cores. With the default meta-training budget (24 short runs) the learned
policy is not expected to beat the baselines on the embedded benchmark (see the README's
learning curve); the table says whether it does. Interrupt it and run again with --resume to
continue from the last checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.cli import (
    OneLineErrorParser,
    add_config_args,
    add_dataclass_args,
    add_preset_flag,
    command_line,
    dataclass_from_args,
    preset_from_argv,
    recorded_config,
    replayed,
    run_main,
)
from trainables.config import PRESETS, FinetuneConfig, protocol
from trainables.errors import ConfigError, DataError

if TYPE_CHECKING:
    from envs.summary import RunSummary


@dataclass(frozen=True)
class PipelineConfig:
    """Meta-training, evaluation and cluster settings (the fine-tuning run is FinetuneConfig)."""

    address: str | None = None
    """Ray cluster to join ('auto' or 'ray://host:10001'); default: start a local Ray."""
    algo: str = "PPO"
    """RLlib algorithm that trains the controller: PPO, APPO, IMPALA (MultiDiscrete), SAC (Box),
    DQN (Discrete)."""
    use_lstm: bool = False
    """Recurrent policy (RLlib's LSTM model config), as ASG's was."""
    num_env_runners: int = 2
    """RLlib env runners: fine-tuning runs sampled in parallel during meta-training; also the
    number of evaluation trials run at once."""
    cpus_per_env_runner: float = 1
    """CPUs per env runner and per evaluation trial."""
    gpus_per_env_runner: float = 0
    """GPUs per env runner and per evaluation trial (fractions share a GPU)."""
    meta_episodes: int = 24
    """Meta-training budget: fine-tuning runs (episodes) the RL algorithm may sample."""
    meta_iters_per_window: int = 3
    """SGD iterations per window of the meta-training runs (0: --iters-per-window). Fewer than
    at evaluation makes meta-training cheap; everything else about the run is the same."""
    episodes_per_iteration: int = 4
    """Episodes per RLlib training iteration (sets train_batch_size_per_learner)."""
    seeds: int = 3
    """Evaluation seeds, the same for every method (PBT: one member per seed); disjoint from
    the seeds meta-training sees."""
    baselines: str = "hand_tuned,uniform@0.1"
    """Comma-separated non-learned controllers to compare with (empty: none): constant, cosine,
    step, hand_tuned, random, pbt, uniform@<m>."""
    greedy: bool = False
    """Deploy the learned policy greedily instead of sampling its actions (ASG samples)."""
    policy_checkpoint: str | None = None
    """Skip meta-training and deploy this exported policy folder (what <output-dir>/policy/
    holds; an RLlib checkpoint must be exported first, see the README)."""
    output_dir: str = "runs/asg"
    """Where results, TensorBoard logs and checkpoints go (a shared path on a cluster)."""
    resume: bool = False
    """Continue an interrupted run in --output-dir from its last checkpoints."""
    dashboard: bool = True
    """Start Ray's dashboard with the local Ray (--no-dashboard: a lighter Ray on a small
    machine; a cluster joined with --address keeps its own)."""
    dashboard_host: str = "127.0.0.1"
    """Interface the local Ray dashboard binds to."""


# Meta-training budgets scaled to each preset's cost per episode.
PIPELINE_PRESETS: dict[str, PipelineConfig] = {
    "tiny": PipelineConfig(
        meta_episodes=4, seeds=2, meta_iters_per_window=0, episodes_per_iteration=2
    ),
    "embedded": PipelineConfig(),
    "visda": PipelineConfig(
        meta_episodes=100, seeds=3, episodes_per_iteration=4, meta_iters_per_window=100
    ),
}
EVAL_SEED_BASE = 10_000  # RLlib seeds its env runners from small integers; keep evaluation apart


def build_parser(preset: str, recorded: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """Flags with the preset's defaults, or with those of a recorded run (`--config`)."""
    parser = OneLineErrorParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_preset_flag(parser, preset)
    parser.add_argument(
        "--config",
        default=None,
        help="replay the configuration recorded in a results.json (flags given too override it)",
    )
    pipe, cfg = PIPELINE_PRESETS[preset], PRESETS[preset]
    if recorded is not None:
        pipe = replayed(PipelineConfig, recorded, "pipeline_config", pipe)
        cfg = replayed(FinetuneConfig, recorded, "finetune_config", cfg)
    add_dataclass_args(parser, pipe, "meta-training, evaluation and cluster")
    add_config_args(parser, cfg)
    return parser


def pipeline_from_args(args: argparse.Namespace) -> PipelineConfig:
    pipe = dataclass_from_args(PipelineConfig, args)
    from controllers.spec import baseline

    for name in pipe.baselines.split(","):
        if name:
            try:
                baseline(name)
            except ConfigError as exc:
                raise ConfigError(f"--baselines: {exc}") from None
    for name in ("num_env_runners", "meta_episodes", "seeds", "episodes_per_iteration"):
        if getattr(pipe, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if pipe.meta_iters_per_window < 0:
        raise ConfigError("--meta-iters-per-window must be >= 0")
    if pipe.cpus_per_env_runner <= 0 or pipe.gpus_per_env_runner < 0:
        raise ConfigError("--cpus-per-env-runner must be > 0 and --gpus-per-env-runner >= 0")
    return pipe


def start_ray(pipe: PipelineConfig) -> None:
    from controllers.cluster import start_ray as join_or_start

    join_or_start(
        pipe.address,
        pipe.num_env_runners,
        pipe.cpus_per_env_runner,
        pipe.gpus_per_env_runner,
        dashboard=pipe.dashboard,
        dashboard_host=pipe.dashboard_host,
    )


def episodes_of(result: dict[str, Any]) -> int:
    """Fine-tuning runs (episodes) sampled so far, from an RLlib training result."""
    return int(result.get("env_runners", {}).get("num_episodes_lifetime", 0))


def meta_train(pipe: PipelineConfig, cfg: FinetuneConfig, storage: Path) -> Path:
    """Train the controller with RLlib under Tune; returns the final RLlib checkpoint's path."""
    from ray import tune

    from controllers.algorithms import (
        Resources,
        build_algo_config,
        episodes_per_iteration_for,
    )
    from controllers.callbacks import ASGMetricsCallback
    from controllers.tune_runs import (
        StopOnInputError,
        durable_run_config,
        input_error_of,
        make_tuner,
    )

    error_file = storage / "meta_train_input_errors.txt"
    error_file.unlink(missing_ok=True)  # from an earlier attempt whose input has been fixed
    storage.mkdir(parents=True, exist_ok=True)
    meta_cfg = cfg.replace(iters_per_window=pipe.meta_iters_per_window or cfg.iters_per_window)
    episodes = episodes_per_iteration_for(pipe.episodes_per_iteration, pipe.num_env_runners)
    if episodes != pipe.episodes_per_iteration:
        print(
            f"[asg] episodes per iteration raised from {pipe.episodes_per_iteration} to "
            f"{episodes} so that each of the {pipe.num_env_runners} env runners samples whole "
            f"episodes",
            flush=True,
        )
    algo_config = build_algo_config(
        pipe.algo,
        {
            "config": dataclasses.asdict(meta_cfg),
            "report_timing": True,
            "report_test": False,  # meta-training sees the proxy only, never the real split
            "input_error_file": str(error_file),
        },
        windows_per_episode=cfg.windows,
        resources=Resources(
            pipe.num_env_runners, pipe.cpus_per_env_runner, pipe.gpus_per_env_runner
        ),
        episodes_per_iteration=pipe.episodes_per_iteration,
        use_lstm=pipe.use_lstm,
        callbacks=ASGMetricsCallback,
    )
    tuner = make_tuner(
        pipe.algo,
        storage,
        "meta_train",
        pipe.resume,
        param_space=algo_config,
        run_config=durable_run_config(
            storage,
            "meta_train",
            tune.CheckpointConfig(checkpoint_frequency=1, checkpoint_at_end=True, num_to_keep=3),
            stop=StopOnInputError(error_file, lambda r: episodes_of(r) >= pipe.meta_episodes),
        ),
    )
    result = tuner.fit()[0]
    if error_file.exists():
        first = error_file.read_text().splitlines()[0]
        raise DataError(f"{first} (an env runner hit it; meta-training stopped)")
    if input_error_of(result.error):
        raise DataError(input_error_of(result.error))
    episodes = episodes_of(result.metrics or {})
    if result.error is None and episodes < pipe.meta_episodes:
        # Tune turns Ctrl-C into a clean stop; its checkpoints are on disk. Do not go on to
        # evaluate a half-trained policy.
        raise KeyboardInterrupt(f"meta-training stopped after {int(episodes)} runs")
    if result.checkpoint is None:
        raise RuntimeError(f"meta-training ended without a checkpoint: {result.error}")
    return Path(result.checkpoint.path)


def compare_methods(
    pipe: PipelineConfig,
    cfg: FinetuneConfig,
    storage: Path,
    policy_dir: Path,
    encoding: str,
) -> list[RunSummary]:
    """The learned policy and the baselines, each on fresh fine-tuning runs over the same
    seeds."""
    from controllers.spec import baseline, learned
    from controllers.tune_runs import TrialResources, run_controllers, run_pbt

    resources = TrialResources(
        pipe.cpus_per_env_runner, pipe.gpus_per_env_runner, pipe.num_env_runners
    )
    seeds = [EVAL_SEED_BASE + i for i in range(pipe.seeds)]
    names = [b for b in pipe.baselines.split(",") if b]
    label = "learned (saved policy)" if pipe.policy_checkpoint else f"learned ({pipe.algo})"
    specs = [learned(label, str(policy_dir), encoding, greedy=pipe.greedy)]
    specs += [baseline(b) for b in names if b != "pbt"]
    runs = run_controllers(specs, seeds, cfg, storage, "evaluate", resources, pipe.resume)
    if "pbt" in names:
        runs += run_pbt(cfg, storage, resources, seeds, pipe.resume)
    return runs


def _write_interrupted(out: Path, command: str, preset: str, stage: str, storage: Path) -> None:
    """What an interrupted meta-training leaves: where its checkpoints and curves are."""
    from controllers.atomic_files import write_text
    from experiments.report import write_json

    where = storage / "meta_train"
    write_json(
        out / "results.json",
        {"command": command, "preset": preset, "complete": False, "stopped": stage,
         "checkpoints_and_progress": str(where)},
    )  # fmt: skip
    write_text(
        out / "results.md",
        f"# ASG results ({preset} preset): interrupted\n\nCommand: `{command}`\n\n"
        f"Stopped during {stage}. No policy was evaluated. Checkpoints, progress.csv and "
        f"TensorBoard logs so far are under `{where}`; run the same command with `--resume` "
        f"to continue from the last checkpoint.\n",
    )


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, PipelineConfig]:
    """(preset, fine-tuning config, pipeline config) of a command line; no side effects."""
    from trainables.cli import config_from_args

    recorded = recorded_config(argv)
    preset = preset_from_argv(argv, default=recorded["preset"] if recorded else "embedded")
    args = build_parser(preset, recorded).parse_args(argv)
    cfg, pipe = config_from_args(args), pipeline_from_args(args)
    from controllers.spec import baseline, check_levels

    for name in filter(None, pipe.baselines.split(",")):
        check_levels(baseline(name), cfg, "--baselines")
    return preset, cfg, pipe


def trained_policy(
    pipe: PipelineConfig, cfg: FinetuneConfig, out: Path, command: str, preset: str
) -> Path:
    """The policy to deploy: --policy-checkpoint, or one meta-trained now and exported to
    <out>/policy (an interrupt writes what is known and re-raises)."""
    from controllers.saved_policy import export_policy
    from trainables.models import MODEL_GROUPS

    if pipe.policy_checkpoint:
        policy_dir = Path(pipe.policy_checkpoint).resolve()
        print(f"[asg] deploying policy from {policy_dir}", flush=True)
        return policy_dir
    print(f"[asg] protocol: {protocol(cfg)}", flush=True)
    print(
        f"[asg] 1/3 meta-training {pipe.algo} on {pipe.meta_episodes} fine-tuning runs "
        f"({cfg.windows} windows x {pipe.meta_iters_per_window or cfg.iters_per_window} SGD "
        f"iterations each; evaluation runs use {cfg.iters_per_window})",
        flush=True,
    )
    storage = out / "tune"
    try:
        rllib_checkpoint = meta_train(pipe, cfg, storage)
    except KeyboardInterrupt as stop:
        _write_interrupted(out, command, preset, f"meta-training: {stop}", storage)
        raise
    policy_dir = export_policy(
        rllib_checkpoint, out / "policy", MODEL_GROUPS[cfg.model], cfg.rate_levels
    )
    print(f"[asg] policy saved to {policy_dir} (deploy with --policy-checkpoint)", flush=True)
    return policy_dir


def write_pipeline_results(
    out: Path,
    command: str,
    preset: str,
    cfg: FinetuneConfig,
    pipe: PipelineConfig,
    policy_dir: Path,
    runs: list[RunSummary],
    complete: bool,
    meta_s: float,
    t0: float,
) -> str:
    """results.json, results.md and policy_schedule.png; returns the markdown table."""
    from experiments.report import (
        learned_verdict,
        markdown_table,
        plot_schedules,
        summarise,
        write_results,
    )

    rows, reference = summarise(runs)
    table = markdown_table(rows, reference)
    learned = [r.multipliers for r in runs if r.kind == "learned"]
    title = f"learned {pipe.algo} policy: per-group lr multiplier per window"
    plot_schedules(learned, out / "policy_schedule.png", title)
    wall = time.perf_counter() - t0
    write_results(
        out,
        "results",
        f"ASG results ({preset} preset)",
        command,
        f"Protocol: {protocol(cfg)}.\n\n"
        f"Real-target mean per-class accuracy at the end of each fine-tuning run; the reward "
        f"only ever saw the '{cfg.reward_proxy}' proxy-validation split.\n\n{table}\n"
        f"{learned_verdict(rows, reference)}\n"
        f"Wall time: {wall / 60:.1f} min (meta-training {meta_s / 60:.1f} min).\n",
        {
            "preset": preset,
            "protocol": protocol(cfg),
            "finetune_config": dataclasses.asdict(cfg),
            "pipeline_config": dataclasses.asdict(pipe),
            "policy_checkpoint": str(policy_dir),
            "table": [dataclasses.asdict(r) for r in rows],
            "runs": [r.to_dict() for r in runs],
            "wall_s": {"meta_train": meta_s, "total": wall},
            "complete": complete,
        },
    )
    return table


def main(argv: list[str] | None = None) -> int:
    preset, cfg, pipe = parse(argv)

    from controllers.algorithms import action_encoding_for
    from controllers.saved_policy import check_deployable
    from trainables.models import MODEL_GROUPS
    from trainables.preflight import check_inputs

    # Everything checkable fails here, in one line, before Ray starts any worker.
    encoding = action_encoding_for(pipe.algo)
    check_inputs(cfg)
    if pipe.policy_checkpoint:  # its own encoding, whatever --algo says; groups must match
        encoding = check_deployable(
            pipe.policy_checkpoint, MODEL_GROUPS[cfg.model], cfg.rate_levels
        )

    out = Path(pipe.output_dir).expanduser().resolve()
    storage = out / "tune"
    command = command_line("experiments/asg_visda.py", argv)
    t0 = time.perf_counter()
    start_ray(pipe)
    out.mkdir(parents=True, exist_ok=True)

    policy_dir = trained_policy(pipe, cfg, out, command, preset)
    meta_s = time.perf_counter() - t0

    print(
        f"[asg] 2/3 deploying the policy and running baselines ({pipe.baselines}) on "
        f"{pipe.seeds} seeds",
        flush=True,
    )
    runs = compare_methods(pipe, cfg, storage, policy_dir, encoding)
    expected = pipe.seeds * (1 + len([b for b in pipe.baselines.split(",") if b]))
    complete = len(runs) == expected

    print("[asg] 3/3 writing results", flush=True)
    table = write_pipeline_results(
        out, command, preset, cfg, pipe, policy_dir, runs, complete, meta_s, t0
    )
    print("\n" + table)
    if not complete:
        print(
            f"[asg] only {len(runs)} of {expected} runs finished (interrupted or failed); "
            f"results so far are in {out}; run again with --resume to finish",
            flush=True,
        )
        return 130
    print(f"[asg] done in {(time.perf_counter() - t0) / 60:.1f} min; results in {out}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
