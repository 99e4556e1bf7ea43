"""A fine-tuning run that can be driven window by window: the unit an env or a trainable wraps.

One `FinetuneRun` holds the data, the pretrained model and its frozen teacher. `reset(seed)`
restores the pretrained weights and starts a new run; `train_window(multipliers)` runs one window
of SGD at per-group rates `base x schedule x multiplier`; `evaluate(...)` scores a split.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset, TensorDataset

from trainables.config import FinetuneConfig
from trainables.csg import ContrastiveGuidance, CSGConfig, hyperspherical_energy
from trainables.data.splits import Splits, build_splits
from trainables.engine import (
    Guidance,
    WindowStats,
    evaluate_with_features,
    infinite_batches,
    train_window,
)
from trainables.errors import ConfigError
from trainables.metrics import Accuracy
from trainables.models import build_model
from trainables.optim import lr_scales, make_sgd, set_lr_scales
from trainables.precision import resolve_precision
from trainables.probe import FrozenPass, fit_linear_probe, frozen_pass
from trainables.retention import Retention
from trainables.views import RandAugmentView


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def loader_workers(cfg: FinetuneConfig) -> int:
    """DataLoader worker processes: `cfg.num_workers`, or with -1 one fewer than the CPUs this
    process may use (torch's thread count, which Ray sets to an actor's CPUs), at most 8."""
    if cfg.num_workers >= 0:
        return cfg.num_workers
    return max(0, min(8, torch.get_num_threads() - 1))


def make_loader(dataset: Dataset, cfg: FinetuneConfig, batch: int, **kwargs) -> DataLoader:
    """Workers persist across epochs and windows; pinned memory when a GPU is there."""
    workers = loader_workers(cfg)
    return DataLoader(
        dataset,
        batch_size=batch,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        **kwargs,
    )


class FinetuneRun:
    def __init__(self, cfg: FinetuneConfig, splits: Splits | None = None) -> None:
        if not cfg.pretrained and cfg.guidance_weight > 0:
            raise ConfigError("--guidance-weight > 0 needs a pretrained model (--pretrained)")
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.splits = splits if splits is not None else build_splits(cfg)
        self.precision = resolve_precision(cfg.amp, cfg.channels_last, self.device)
        self.model = build_model(
            cfg.model,
            num_classes=self.splits.num_classes,
            pretrained=cfg.pretrained,
            weights=cfg.weights,
            seed=cfg.data_seed,
            head_hidden=cfg.head_hidden,
        ).to(self.device)
        self.precision.prepare(self.model)
        self.group_names: tuple[str, ...] = self.model.group_names
        self._initial_state = copy.deepcopy(self.model.state_dict())
        self.guidance = self._make_guidance()
        csg = self.guidance.csg
        self._csg_initial = copy.deepcopy(csg.state_dict()) if csg is not None else None
        named = {"test": self.splits.test} | {
            f"proxy/{name}": ds for name, ds in self.splits.proxies.items()
        }
        self._eval_loaders = {
            name: make_loader(ds, cfg, cfg.eval_batch_size, shuffle=False)
            for name, ds in named.items()
        }
        self._order = torch.Generator()  # re-seeded by reset(seed): the data order of a run
        self._frozen = self._frozen_pass()
        self._probe: dict[str, torch.Tensor] | None = None
        self._train_loader = make_loader(
            self._train_dataset(),
            cfg,
            cfg.batch_size,
            shuffle=True,
            drop_last=len(self.splits.train) >= cfg.batch_size,  # type: ignore[arg-type]
            generator=self._order,
        )
        self._eval_loaders["proxy"] = self._eval_loaders[f"proxy/{self.splits.chosen_proxy}"]
        self._reference: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._average: AveragedModel | None = None
        self._wise_start: list[torch.Tensor] | None = None
        self.wise_alpha = math.nan
        """The WiSE-FT alpha the run ended at (--wise-alphas); nan while it runs or when off."""
        self._start_scores: dict[str, Accuracy] = {}
        self.iteration = 0

    def _make_guidance(self) -> Guidance:
        cfg = self.cfg
        g = Guidance(cfg.guidance, cfg.guidance_weight)
        if not g.active:
            return g
        if cfg.guidance == "l2sp":
            g.reference = {
                n: p.detach().clone()
                for n, p in self.model.named_parameters()
                if p.requires_grad and not n.startswith("task_head")
            }
            return g
        teacher = copy.deepcopy(self.model).eval()  # for CSG: the frozen ImageNet key encoder
        teacher.requires_grad_(False)
        g.teacher = teacher
        if cfg.guidance == "csg":
            g.csg = self._make_csg().to(self.device)
            g.key_view = RandAugmentView() if cfg.csg_key_augment else None
        return g

    def _make_csg(self) -> ContrastiveGuidance:
        cfg, available = self.cfg, self.model.map_stages
        stages = cfg.csg_stages or available
        unknown = [s for s in stages if s not in available]
        if unknown:
            raise ConfigError(
                f"--csg-stages {','.join(unknown)}: {cfg.model} offers {', '.join(available)}"
            )
        channels = self.model.map_channels()
        config = CSGConfig(
            stages=stages,
            dim=cfg.csg_dim,
            queue_size=cfg.csg_queue_size,
            temperature=cfg.csg_temperature,
            momentum=cfg.csg_momentum,
            pool=cfg.csg_pool,
        )
        with torch.random.fork_rng(devices=[]):  # the same heads and queue for every episode
            torch.manual_seed(cfg.data_seed)
            return ContrastiveGuidance(config, channels)

    def _frozen_pass(self) -> FrozenPass | None:
        """The pretrained model's pooled features and ImageNet logits for every training image,
        from one inference pass, when the training images are fixed tensors (no augmentation:
        the embedded benchmark). The probe head is fit on the features; with KL guidance the
        logits are the frozen teacher's, so no window runs the teacher again. None for data
        read from files (VisDA), where one pass would cost as much as the run."""
        cfg, train = self.cfg, self.splits.train
        if not isinstance(train, TensorDataset) or not cfg.pretrained:
            if cfg.head_init == "probe":
                raise ConfigError("--head-init probe needs in-memory training images (digits)")
            return None
        if cfg.head_init != "probe" and not (self.guidance.active and cfg.guidance == "kl"):
            return None
        return frozen_pass(self.model, train.tensors[0], cfg.batch_size, self.device)

    def _train_dataset(self) -> Dataset:
        """The training set; with KL guidance and a frozen pass, each image comes with its
        teacher logits, computed at the training batch size (on the CPU they are the live
        teacher's numbers bit for bit: an unchanged student's KL is exactly 0)."""
        train = self.splits.train
        if self._frozen is None or not (self.guidance.active and self.cfg.guidance == "kl"):
            return train
        return TensorDataset(*train.tensors, self._frozen.imagenet_logits)  # type: ignore[attr-defined]

    def _probe_head(self) -> dict[str, torch.Tensor]:
        """The linear probe's state for `task_head` (fit once, then reused by every reset)."""
        if self._probe is None:
            assert self._frozen is not None
            labels = self.splits.train.tensors[1]  # type: ignore[attr-defined]
            w, b = fit_linear_probe(
                self._frozen.features, labels, self.splits.num_classes, self.cfg.probe_l2
            )
            self._probe = {"layers.0.weight": w, "layers.0.bias": b}
        return self._probe

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    @property
    def finished(self) -> bool:
        return self.iteration >= self.cfg.total_iters

    def reset(self, seed: int) -> None:
        """Start a new run from the pretrained weights; `seed` fixes head init and data order."""
        torch.manual_seed(seed)
        self._seed = seed
        self.model.load_state_dict(self._initial_state)
        if self.cfg.head_init == "probe":
            self.model.task_head.load_state_dict(self._probe_head())
        elif self.cfg.pretrained:
            self.model.task_head.reset_parameters()
        else:
            for module in self.model.modules():
                if module is not self.model and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        cfg = self.cfg
        groups = self.model.parameter_groups()
        if self.guidance.csg is not None:  # CSG's query heads are new heads: the head's rate
            self.guidance.csg.load_state_dict(self._csg_initial)
            trained = [p for p in self.guidance.csg.parameters() if p.requires_grad]
            groups = {**groups, "head": [*groups["head"], *trained]}
        self.optimizer = make_sgd(groups, cfg.base_lr, cfg.momentum, cfg.weight_decay)
        self._order.manual_seed(seed)
        self._batches = infinite_batches(self._train_loader)
        self.iteration = 0
        self._average = None
        if cfg.head_init == "sgd" and cfg.head_warmup_iters and cfg.pretrained:
            self._warm_up_head(cfg.head_warmup_iters)
        self.wise_alpha = math.nan
        self._wise_start = (
            [p.detach().clone() for p in self.model.parameters()] if cfg.wise_alphas else None
        )  # WiSE-FT's start: the pretrained weights with this run's initial head

    def _warm_up_head(self, iters: int) -> None:
        """Train the new head alone (a linear probe) before the first window; see the config."""
        set_lr_scales(self.optimizer, [0.0] * (self.num_groups - 1) + [1.0])
        self._train(iters, start_iter=0, total_iters=iters, schedule="constant")
        set_lr_scales(self.optimizer, [1.0] * self.num_groups)

    def train_window(self, multipliers: Sequence[float]) -> WindowStats:
        if self.optimizer is None:
            raise RuntimeError("call reset(seed) before train_window")
        set_lr_scales(self.optimizer, multipliers)
        cfg = self.cfg
        average = self._averaging()
        stats = self._train(
            min(cfg.iters_per_window, cfg.total_iters - self.iteration),
            start_iter=self.iteration,
            total_iters=cfg.total_iters,
            schedule=cfg.schedule,
            rate_factor=self.rate_factor,
            after_step=None if average is None else lambda: average.update_parameters(self.model),
        )
        self.iteration += stats.iters
        if average is not None and self.finished:
            with torch.no_grad():  # the run ends as the mean of its last windows' iterates
                for p, mean in zip(
                    self.model.parameters(), average.module.parameters(), strict=True
                ):
                    p.copy_(mean)
        if self._wise_start is not None and self.finished and not stats.diverged:
            self.wise_alpha = self._interpolate(self._wise_start)
        return stats

    def _interpolate(self, start: list[torch.Tensor]) -> float:
        """WiSE-FT: end the run at (1 - alpha) x `start` + alpha x the fine-tuned weights, for
        the alpha of --wise-alphas that scores best on the proxy split (ties: the largest);
        returns it. torch.lerp gives back either end exactly at alpha 0 and 1."""
        alphas = sorted(set(self.cfg.wise_alphas), reverse=True)
        params = list(self.model.parameters())
        tuned = [p.detach().clone() for p in params]

        def use(alpha: float) -> None:
            with torch.no_grad():
                for p, s, t in zip(params, start, tuned, strict=True):
                    p.copy_(torch.lerp(s, t, alpha))

        if len(alphas) == 1:
            use(alphas[0])
            return alphas[0]
        scores = {}
        for alpha in alphas:
            use(alpha)
            score = self._score("proxy", max_features=0)[0].score(self.cfg.reward_metric)
            scores[alpha] = score if math.isfinite(score) else -math.inf
        best = max(alphas, key=lambda a: (scores[a], a))
        use(best)
        return best

    def _averaging(self) -> AveragedModel | None:
        """The running mean of the weights (--average-windows), from the first window of the
        averaged tail on; None before it or when the option is off."""
        cfg = self.cfg
        window = self.iteration // cfg.iters_per_window
        if not cfg.average_windows or window < cfg.windows - cfg.average_windows:
            return None
        if self._average is None:
            self._average = AveragedModel(self.model)
        return self._average

    @property
    def rate_factor(self) -> float:
        """Factor on every rate in the next window: --anneal-factor in the --anneal-windows
        tail, 1 before it."""
        cfg = self.cfg
        window = self.iteration // cfg.iters_per_window
        return cfg.anneal_factor if window >= cfg.windows - cfg.anneal_windows else 1.0

    def _train(
        self,
        iters: int,
        start_iter: int,
        total_iters: int,
        schedule: str,
        rate_factor: float = 1.0,
        after_step: Callable[[], None] | None = None,
    ) -> WindowStats:
        return train_window(
            self.model,
            self._batches,
            self.optimizer,  # type: ignore[arg-type]
            self.guidance,
            start_iter=start_iter,
            iters=iters,
            total_iters=total_iters,
            base_lr=self.cfg.base_lr * rate_factor,
            schedule=schedule,
            device=self.device,
            bn_mode=self.cfg.bn_mode,
            precision=self.precision,
            after_step=after_step,
        )

    def evaluate(self, split: str) -> Accuracy:
        """Score 'proxy' (the chosen proxy-validation split: the reward), 'proxy/<name>' (any
        proxy the data offers) or 'test' (real target: reporting only). With a probe head
        start every run starts from the same model, so its scores there are computed once."""
        if self.iteration == 0 and self.cfg.head_init == "probe":
            if split not in self._start_scores:
                self._start_scores[split] = self._score(split, max_features=0)[0]
            return self._start_scores[split]
        return self._score(split, max_features=0)[0]

    def evaluate_with_energy(self, split: str, max_images: int = 2000) -> tuple[Accuracy, float]:
        """`evaluate(split)`, plus the hyperspherical energy (s=1) of the normalised pooled
        features of its first `max_images` images, from the same forward passes: CSG's
        diagnostic of feature diversity (lower: more evenly spread). A report, never part of
        the reward."""
        acc, features = self._score(split, max_features=max_images)
        return acc, hyperspherical_energy(features, s=1.0)

    def _score(self, split: str, max_features: int) -> tuple[Accuracy, torch.Tensor]:
        return evaluate_with_features(
            self.model,
            self._eval_loaders[split],
            self.splits.num_classes,
            self.device,
            flip=self.cfg.flip_eval,
            precision=self.precision,
            max_features=max_features,
        )

    @property
    def proxy_names(self) -> tuple[str, ...]:
        return tuple(self.splits.proxies)

    def retention(self) -> Retention | None:
        """How far the ImageNet head still agrees with the frozen pretrained model on natural
        photos (see trainables.retention); None for a model trained from scratch."""
        if not self.cfg.pretrained:
            return None
        from trainables.retention import natural_images, retention

        if self._reference is None:
            self._reference = self.guidance.teacher or self._frozen_pretrained()
            self._photos = natural_images(self.cfg.image_size).to(self.device)
        return retention(self.model, self._reference, self._photos)

    def _frozen_pretrained(self) -> torch.nn.Module:
        ref = copy.deepcopy(self.model)
        ref.load_state_dict(self._initial_state)
        return ref.eval().requires_grad_(False)

    def multipliers(self) -> list[float]:
        return lr_scales(self.optimizer) if self.optimizer else [1.0] * self.num_groups

    def head_weight_stats(self) -> tuple[float, float]:
        w = self.model.task_head.weight.detach()
        return w.mean().item(), w.std().item()

    def state_dict(self) -> dict:
        """Everything needed to continue this run: weights, optimizer, position, RNG."""
        if self.optimizer is None:
            raise RuntimeError("call reset(seed) before state_dict")
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "iteration": self.iteration,
            "seed": self._seed,
            "torch_rng": torch.get_rng_state(),
            **({"csg": self.guidance.csg.state_dict()} if self.guidance.csg is not None else {}),
            **({"average": self._average.state_dict()} if self._average is not None else {}),
            **({"wise_start": self._wise_start} if self._wise_start is not None else {}),
            "wise_alpha": self.wise_alpha,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue a run saved by `state_dict`. The data order restarts from a stream seeded by
        (seed, iteration), so a resumed run is reproducible but not bit-identical to one that
        never stopped."""
        self.reset(int(state["seed"]))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[union-attr]
        if self.guidance.csg is not None:
            self.guidance.csg.load_state_dict(state["csg"])
        if "average" in state:
            self._average = AveragedModel(self.model)
            self._average.load_state_dict(state["average"])
        if "wise_start" in state:
            self._wise_start = [t.to(self.device) for t in state["wise_start"]]
        self.wise_alpha = float(state.get("wise_alpha", math.nan))
        self.iteration = int(state["iteration"])
        torch.set_rng_state(state["torch_rng"])
        self._order.manual_seed(self._seed * 1_000_003 + self.iteration)
        self._batches = infinite_batches(self._train_loader)

    def model_is_finite(self) -> bool:
        return all(
            torch.isfinite(t).all()
            for t in self.model.state_dict().values()
            if t.is_floating_point()
        )
