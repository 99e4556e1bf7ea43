"""The learning curve's own settings (experiments/learning_curve.py): how the one policy is
meta-trained, when it is snapshotted and how each snapshot is deployed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CurveConfig:
    algo: str = "PPO"
    """RLlib algorithm (see asg_visda.py --help)."""
    use_lstm: bool = False
    """Recurrent policy, as ASG's was."""
    algo_config: str = ""
    """Training settings passed to the algorithm's `AlgorithmConfig.training()`, over the
    project's: 'lr=1e-4,num_epochs=8,entropy_coeff=0.02' (Python literals; an unknown setting
    is refused in one line)."""
    meta_iters_per_window: int = 0
    """SGD iterations per window of the meta-training task (0, the default: the preset's own,
    the task each snapshot is judged on)."""
    milestones: tuple[int, ...] = (0, 16, 64, 256)
    """Meta-training episode counts at which the policy is exported and evaluated,
    space-separated (the older comma-separated form is read too)."""
    episodes_per_iteration: int = 4
    """Episodes per RLlib training iteration."""
    num_env_runners: int = 2
    """Env runners sampling meta-training episodes in parallel."""
    seeds: int = 0
    """Evaluation seeds (experiments/ablation.py's seeds, for pairing; 0: as the ablation's,
    a 95% half-width of 1 point on the noisiest pair the committed studies measured)."""
    greedy: bool = False
    """Deploy greedily instead of sampling actions as ASG does."""
    compare_with: str | None = None
    """An ablation.json on the same seeds: report each point's paired difference to its best
    baseline row."""
