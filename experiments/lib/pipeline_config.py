"""The pipeline's own settings (experiments/asg_visda.py): meta-training, evaluation and
cluster; the fine-tuning run itself is a FinetuneConfig. Both are recorded in results.json and
replayed by `--config`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.lib.study import RayRequest
from trainables.errors import ConfigError

if TYPE_CHECKING:
    from controllers.spec import ControllerSpec
    from controllers.tune_runs import TrialResources
    from trainables.config import FinetuneConfig


@dataclass(frozen=True)
class PipelineConfig:
    """Meta-training, evaluation and cluster settings (the fine-tuning run is FinetuneConfig)."""

    address: str | None = None
    """Ray cluster to join: 'auto' or host:port. Without it: the cluster RAY_ADDRESS names (as
    under `ray job submit --working-dir .`) or that `ray start` left on this machine, else a
    local Ray."""
    algo: str = "PPO"
    """RLlib algorithm that trains the controller: PPO, APPO, IMPALA (MultiDiscrete),
    DQN (Discrete)."""
    use_lstm: bool = False
    """Recurrent policy (RLlib's LSTM model config), as ASG's was."""
    algo_config: str = ""
    """Training settings passed to the algorithm's `AlgorithmConfig.training()`, over the
    project's: 'lr=1e-4,num_epochs=8,entropy_coeff=0.02' (Python literals; an unknown setting
    is refused in one line)."""
    num_env_runners: int = 2
    """RLlib env runners: fine-tuning runs sampled in parallel during meta-training; also the
    number of evaluation trials run at once."""
    cpus_per_env_runner: float = 1
    """CPUs per env runner and per evaluation trial."""
    gpus_per_env_runner: float = 0
    """GPUs per env runner and per evaluation trial (fractions share a GPU)."""
    meta_episodes: int = 16
    """Meta-training budget: fine-tuning runs (episodes) the RL algorithm may sample."""
    meta_iters_per_window: int = 0
    """SGD iterations per window of the meta-training runs (0, the default: --iters-per-window,
    the task the policy is judged on; never more than it). Fewer makes meta-training cheaper
    but trains the policy on a shorter task than the one it is deployed on (on digits, a policy
    meta-trained at 3 learned 'raise the head's rate', which the full runs do not reward);
    everything else about the run is the same."""
    episodes_per_iteration: int = 4
    """Episodes per RLlib training iteration (sets train_batch_size_per_learner)."""
    seeds: int = 3
    """Evaluation seeds, the same for every method (PBT: one member per seed); disjoint from
    the seeds meta-training sees."""
    baselines: tuple[str, ...] = ("hand_tuned", "uniform@0.1")
    """Non-learned controllers to compare with, space-separated (none: no baselines; the old
    comma-separated form is read too): constant, cosine, step, hand_tuned, random, pbt,
    uniform@<m>."""
    greedy: bool = False
    """Deploy the learned policy greedily instead of sampling its actions (ASG samples)."""
    init_policy: str | None = None
    """Start meta-training from this saved policy's weights instead of a fresh policy (a
    policy folder of the same --algo and --use-lstm, for this model's layer groups and rate
    levels): more meta-training for a policy trained before, as ASG's released code starts
    from a downloaded one. 'shipped' (the embedded preset's default): the PPO policy
    meta-trained for 128 runs on the embedded benchmark at batch 16
    (results/learning_curve_deploy/),
    where it fits (--algo PPO without --use-lstm, a model with Lite0's layer groups, the log
    levels), else a fresh policy, said at start. None: a fresh policy. Unused with
    --policy-checkpoint, which skips meta-training."""
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

    def __post_init__(self) -> None:
        names = self.baselines.split(",") if isinstance(self.baselines, str) else self.baselines
        flat = tuple(b for name in names for b in str(name).split(",") if b)
        object.__setattr__(self, "baselines", flat)

    def baseline_names(self) -> list[str]:
        return list(self.baselines)

    def expected_runs(self) -> int:
        """Evaluation runs of a complete pipeline: every method on every seed."""
        return self.seeds * (1 + len(self.baseline_names()))

    def ray(self) -> RayRequest:
        return RayRequest(
            self.address,
            self.num_env_runners,
            self.cpus_per_env_runner,
            self.gpus_per_env_runner,
            flag="--num-env-runners",
            dashboard=self.dashboard,
            dashboard_host=self.dashboard_host,
        )

    def resources(self) -> TrialResources:
        """Evaluation trials: an env runner's resources each, as many at once as env runners."""
        from controllers.tune_runs import TrialResources

        return TrialResources(
            self.cpus_per_env_runner, self.gpus_per_env_runner, self.num_env_runners
        )

    def methods(self, policy_dir: Path, encoding: str) -> list[ControllerSpec]:
        """The learned policy in `policy_dir` and the baselines, in table order."""
        from controllers.spec import baseline, learned

        label = "learned (saved policy)" if self.policy_checkpoint else f"learned ({self.algo})"
        specs = [learned(label, str(policy_dir), encoding, greedy=self.greedy)]
        return specs + [baseline(b) for b in self.baseline_names()]


SHIPPED = "shipped"
SHIPPED_POLICY = (
    Path(__file__).resolve().parents[2] / "results" / "learning_curve_deploy" / "policy_ep0128"
)
"""--init-policy shipped: PPO meta-trained for 128 runs of the embedded benchmark
(results/learning_curve_deploy/command.sh)."""


# Meta-training budgets scaled to each preset's cost per episode (other presets: the defaults).
PIPELINE_PRESETS: dict[str, PipelineConfig] = {
    "tiny": PipelineConfig(meta_episodes=4, seeds=2, episodes_per_iteration=2),
    # Meta-training continues from the committed 128-run policy: 16 runs from scratch do not
    # move PPO's policy measurably on 2 cores (docs/results.md). At batch 48 a run costs about
    # 80 s through Tune, and the 9 evaluation runs take 7.4 min on 2 cores, so meta-training
    # gets one iteration of two runs, one per core, to stay within 10 minutes (4 runs: 10.3
    # min). The uniform baseline is the best uniform rate on the proxy at batch 48
    # (results/benchmark_landscape_b48).
    "embedded": PipelineConfig(
        init_policy=SHIPPED,
        meta_episodes=2,
        episodes_per_iteration=2,
        baselines=("hand_tuned", "uniform@0.2"),
    ),
    "visda": PipelineConfig(
        # A fifth of VisDA's 500 iterations per window: 100 deploy-length runs would cost
        # days of GPU time. The transfer from this horizon is not measured (no VisDA here).
        meta_episodes=100,
        seeds=3,
        episodes_per_iteration=4,
        meta_iters_per_window=100,
    ),
}


def check_pipeline(pipe: PipelineConfig, cfg: FinetuneConfig) -> None:
    """One-line ConfigErrors naming the flag, before anything starts: unknown baselines, counts
    below 1, baselines whose multipliers are not levels of the run `cfg`."""
    from controllers.spec import baseline, check_levels

    for name in pipe.baseline_names():
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
    for name in pipe.baseline_names():
        check_levels(baseline(name), cfg, "--baselines")
    from controllers.algorithms import action_encoding_for, parse_training_settings

    action_encoding_for(pipe.algo)  # an unknown --algo first, in its own words
    if pipe.algo_config:
        parse_training_settings(pipe.algo, pipe.algo_config)
    initial_policy(pipe, cfg)  # an unusable --init-policy is one line now


def initial_policy(pipe: PipelineConfig, cfg: FinetuneConfig) -> tuple[str | None, str]:
    """(the saved policy meta-training starts from, or None for a fresh one; why). A folder
    given by --init-policy must fit this meta-training (one line naming the flag otherwise);
    'shipped' falls back to a fresh policy, saying why, where the shipped one does not fit."""
    if pipe.policy_checkpoint or not pipe.init_policy:
        return None, "a fresh policy"
    shipped = pipe.init_policy == SHIPPED
    folder = SHIPPED_POLICY if shipped else Path(pipe.init_policy)
    try:
        _check_start(folder, pipe, cfg)
    except ConfigError as exc:
        # The saved-policy checks name the deploy flag; here the folder came from this one.
        why = str(exc).removeprefix("--policy-checkpoint ")
        if not shipped:
            raise ConfigError(f"--init-policy {why}") from None
        return None, f"a fresh policy (the shipped PPO policy does not fit this run: {why})"
    why = "the shipped policy (PPO, 128 runs of the embedded benchmark)" if shipped else str(folder)
    return str(folder.resolve()), why


def _check_start(folder: Path, pipe: PipelineConfig, cfg: FinetuneConfig) -> None:
    """A ConfigError unless meta-training with `pipe` on `cfg`'s model can start from the saved
    policy in `folder`: its layer groups, rate levels, algorithm and recurrence."""
    from controllers.saved_policy import check_deployable, read_policy_meta
    from trainables.models import MODEL_GROUPS

    check_deployable(folder, MODEL_GROUPS[cfg.model], cfg.rate_levels)
    meta = read_policy_meta(folder)
    lstm = bool(meta["model_config"].get("use_lstm", False))
    if meta["algo"] != pipe.algo or lstm != pipe.use_lstm:
        raise ConfigError(
            f"{folder} is a{' recurrent' if lstm else ''} {meta['algo']} policy; this "
            f"meta-training trains a{' recurrent' if pipe.use_lstm else ''} {pipe.algo} one "
            f"(set --algo/--use-lstm)"
        )
