"""The pipeline's first stage: meta-train the controller with RLlib under Tune (resumable, a
checkpoint every iteration, stopped at once by an env runner's input error) and export the
policy to deploy, or take the one --policy-checkpoint names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.lib.pipeline_config import PipelineConfig, initial_policy
from experiments.lib.pipeline_results import write_interrupted
from experiments.lib.study import Study
from trainables.config import FinetuneConfig, protocol
from trainables.errors import DataError


def meta_iters(requested: int, cfg: FinetuneConfig) -> int:
    """SGD iterations per window of the meta-training runs: `requested` (0: the evaluation
    runs' own), never more than the evaluation runs' (a preset's count, such as VisDA's 100,
    would otherwise meta-train on runs longer than the ones the policy is judged on, when a
    user shortens --iters-per-window)."""
    return min(requested or cfg.iters_per_window, cfg.iters_per_window)


def trained_policy(pipe: PipelineConfig, cfg: FinetuneConfig, study: Study, preset: str) -> Path:
    """The policy to deploy: --policy-checkpoint, or one meta-trained now and exported to
    <out>/policy (an interrupt writes what is known and re-raises)."""
    from controllers.saved_policy import export_policy
    from trainables.models import MODEL_GROUPS

    if pipe.policy_checkpoint:
        policy_dir = Path(pipe.policy_checkpoint).resolve()
        print(f"[asg] deploying policy from {policy_dir}", flush=True)
        return policy_dir
    print(f"[asg] protocol: {protocol(cfg)}", flush=True)
    init_dir, start = initial_policy(pipe, cfg)
    print(
        f"[asg] 1/3 meta-training {pipe.algo} from {start} on {pipe.meta_episodes} fine-tuning "
        f"runs "
        f"({cfg.windows} windows x {meta_iters(pipe.meta_iters_per_window, cfg)} SGD "
        f"iterations each; evaluation runs use {cfg.iters_per_window})",
        flush=True,
    )
    try:
        rllib_checkpoint = meta_train(pipe, cfg, study.tune, init_dir)
    except KeyboardInterrupt as stop:
        write_interrupted(study, preset, f"meta-training: {stop}")
        raise
    policy_dir = export_policy(
        rllib_checkpoint, study.out / "policy", MODEL_GROUPS[cfg.model], cfg.rate_levels
    )
    print(f"[asg] policy saved to {policy_dir} (deploy with --policy-checkpoint)", flush=True)
    return policy_dir


def meta_train(
    pipe: PipelineConfig, cfg: FinetuneConfig, storage: Path, init_dir: str | None = None
) -> Path:
    """Train the controller with RLlib under Tune, from the saved policy in `init_dir` or a
    fresh one; returns the final RLlib checkpoint's path."""
    from ray import tune

    from controllers.algorithms import (
        Resources,
        build_algo_config,
        episodes_per_iteration_for,
        parse_training_settings,
    )
    from controllers.callbacks import ASGMetricsCallback
    from controllers.meta_train import episodes_of
    from controllers.tune_runs import (
        StopOnInputError,
        durable_run_config,
        input_error_of,
        make_tuner,
    )

    error_file = storage / "meta_train_input_errors.txt"
    error_file.unlink(missing_ok=True)  # from an earlier attempt whose input has been fixed
    storage.mkdir(parents=True, exist_ok=True)
    meta_cfg = cfg.replace(iters_per_window=meta_iters(pipe.meta_iters_per_window, cfg))
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
        training=parse_training_settings(pipe.algo, pipe.algo_config),
        use_lstm=pipe.use_lstm,
        callbacks=ASGMetricsCallback,
        init_policy=init_dir,
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
            total_runs=pipe.meta_episodes,
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
