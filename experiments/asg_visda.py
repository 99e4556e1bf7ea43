"""ASG end to end on Ray: meta-train a layer-wise learning-rate policy with RLlib, deploy it in
fresh fine-tuning runs, and compare it with non-learned baselines on the same budget and seeds.

How to run:
    python experiments/asg_visda.py                   # embedded digits benchmark, 2-core CPU
    python experiments/asg_visda.py --preset tiny     # smoke run, a few minutes
    python experiments/asg_visda.py --preset visda --data-root /data/visda17 --address auto \
        --num-env-runners 8 --gpus-per-env-runner 0.5 --meta-episodes 200

What to expect: a table of real-target mean per-class accuracy per method (the learned policy,
hand-tuned and uniform 0.2 by default; --baselines adds constant, cosine, step, random, pbt),
each with its paired difference to the best baseline on the same seeds, plus results.json,
results.md, policy_schedule.png, TensorBoard logs and checkpoints under --output-dir. About 10
minutes on 2 CPU cores. The embedded default meta-trains 2 more runs from the shipped 128-run
policy, which is not expected to beat the baselines (docs/results.md: the learning curve); the
table says whether it does. Interrupt it and run again with --resume to continue from the last
checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.lib.pipeline_config import PIPELINE_PRESETS, PipelineConfig, check_pipeline
from experiments.lib.seeds import PIPELINE, evaluation_seeds
from trainables.config import PRESETS, FinetuneConfig, PresetName
from trainables.entry import (
    Flat,
    parse_args,
    preset_from_argv,
    recorded_config,
    replayed,
    run_main,
    script_doc,
)


@dataclass(frozen=True)
class Args:
    pipeline: Flat[PipelineConfig]
    run: Flat[FinetuneConfig]
    preset: PresetName = "embedded"
    """Named configuration whose values are the defaults every other flag overrides: tiny
    (smoke tests, minutes), embedded (the offline digits benchmark), short (its meta-training
    twin), visda (VisDA-17 with ResNet-101, needs --data-root and a GPU)."""
    config: str | None = None
    """Replay the configuration recorded in a results.json (flags given too override it)."""


def parse(argv: list[str] | None) -> tuple[str, FinetuneConfig, PipelineConfig]:
    """(preset, fine-tuning config, pipeline config) of a command line; no side effects. The
    defaults are the preset's, or those of the run a `--config` results.json recorded."""
    recorded = recorded_config(argv)
    preset = preset_from_argv(argv, default=recorded["preset"] if recorded else "embedded")
    pipe, cfg = PIPELINE_PRESETS.get(preset, PipelineConfig()), PRESETS[preset]
    if recorded is not None:
        pipe = replayed(PipelineConfig, recorded, "pipeline_config", pipe)
        cfg = replayed(FinetuneConfig, recorded, "finetune_config", cfg)
    args = parse_args(Args, argv, Args(pipe, cfg, preset), script_doc(__doc__))  # type: ignore[arg-type]
    check_pipeline(args.pipeline, args.run)
    return args.preset, args.run, args.pipeline


def main(argv: list[str] | None = None) -> int:
    preset, cfg, pipe = parse(argv)

    from controllers.algorithms import action_encoding_for
    from controllers.tune_runs import run_controllers
    from experiments.lib.meta_training import trained_policy
    from experiments.lib.pipeline_results import write_pipeline_results
    from experiments.lib.study import start_study

    # Everything checkable fails here, in one line, before Ray starts any worker. A saved
    # policy has its own encoding, whatever --algo says; its layer groups must match.
    encoding = action_encoding_for(pipe.algo)
    study = start_study(
        "experiments/asg_visda.py", argv, cfg, pipe.ray(), pipe.output_dir,
        deploys=pipe.policy_checkpoint,
    )  # fmt: skip
    encoding = study.policy_encoding or encoding

    policy_dir = trained_policy(pipe, cfg, study, preset)
    meta_s = study.elapsed()

    print(
        f"[asg] 2/3 deploying the policy and running baselines ({', '.join(pipe.baselines)}) on "
        f"{pipe.seeds} seeds",
        flush=True,
    )
    seeds = evaluation_seeds(PIPELINE, pipe.seeds)
    methods = pipe.methods(policy_dir, encoding)
    runs = run_controllers(
        methods, seeds, cfg, study.tune, "evaluate", pipe.resources(), pipe.resume
    )

    print("[asg] 3/3 writing results", flush=True)
    table = write_pipeline_results(study, preset, cfg, pipe, policy_dir, runs, meta_s)
    print("\n" + table)
    if len(runs) < pipe.expected_runs():
        print(
            f"[asg] only {len(runs)} of {pipe.expected_runs()} runs finished (interrupted or "
            f"failed); results so far are in {study.out}; run again with --resume to finish",
            flush=True,
        )
        return 130
    print(f"[asg] done in {study.elapsed() / 60:.1f} min; results in {study.out}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
