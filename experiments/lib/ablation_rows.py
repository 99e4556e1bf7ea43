"""The ablation's rows: each a controller with its fine-tuning overrides, all on the config's
guidance (KL, weight --guidance-weight) unless marked otherwise; the learned rows a saved policy
adds, one per guidance it is deployed with; and the order the table lists them in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from controllers.spec import ControllerSpec, baseline, learned

if TYPE_CHECKING:
    from envs.summary import RunSummary

OFF = {"guidance_weight": 0.0}


def _rows() -> dict[str, ControllerSpec]:
    """Row name -> its controller (and FinetuneConfig overrides)."""

    def row(name: str, spec: ControllerSpec, **finetune) -> tuple[str, ControllerSpec]:
        return name, spec.with_(method=name, finetune={**spec.finetune, **finetune})

    hand = baseline("hand_tuned")
    return dict(
        [
            *(row(f"uniform {m}", baseline(f"uniform@{m}")) for m in (0.05, 0.1, 0.2, 0.5)),
            row("constant", baseline("constant")),
            row("hand_tuned", hand),
            row("cosine", baseline("cosine")),
            row("step", baseline("step")),
            row("hand_tuned (no KL)", hand, **OFF),
            *(row(f"uniform {m} (no KL)", baseline(f"uniform@{m}"), **OFF) for m in (0.1, 0.2)),
            row("hand_tuned + CSG", hand, guidance="csg"),
            row("hand_tuned + CSG (GAP)", hand, guidance="csg", csg_pool="gap"),
            row("hand_tuned + L2-SP", hand, guidance="l2sp", guidance_weight=1e-3),
            row("hand_tuned + feature L2", hand, guidance="feature_l2", guidance_weight=0.01),
            row("random", baseline("random")),
            row("pbt", baseline("pbt")),
            # No ImageNet statistics to keep: batch statistics, and the full base rate.
            row(
                "scratch",
                baseline("constant").with_(kind="reference"),
                pretrained=False,
                guidance_weight=0.0,
                bn_mode="train",
                head_init="sgd",  # no pretrained features to fit a probe on
            ),
            # Trained on real digits, scored on a disjoint half of the real pool (see config).
            row("oracle", hand.with_(kind="reference"), train_domain="real", guidance_weight=0.0),
        ]
    )


ROWS = _rows()
LEARNED = "learned"
LEARNED_ROWS = {"kl": (LEARNED, {}), "csg": (f"{LEARNED} + CSG", {"guidance": "csg"})}
"""--learned-guidance choice -> (row name, fine-tuning overrides of the learned row)."""


def learned_rows(
    policy_dir: str, encoding: str, guidances: list[str], greedy: bool
) -> list[ControllerSpec]:
    """The saved policy in `policy_dir` deployed with each of `guidances` (LEARNED_ROWS keys)."""
    policy = str(Path(policy_dir).resolve())
    specs = []
    for guidance in guidances:
        name, overrides = LEARNED_ROWS[guidance]
        spec = learned(name, policy, encoding, greedy=greedy)
        specs.append(spec.with_(finetune={**spec.finetune, **overrides}))
    return specs


def in_row_order(runs: list[RunSummary], rows: list[str]) -> list[RunSummary]:
    """`runs` sorted as the table lists them: by row, then by seed."""
    order = {r: i for i, r in enumerate(rows)}
    return sorted(runs, key=lambda r: (order.get(r.method, 99), r.seed))
