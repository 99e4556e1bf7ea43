"""One configuration object for a fine-tuning run, and the named presets.

The environment, the command line and the results files all read this dataclass: a results file
records `dataclasses.asdict(config)`, so it says exactly what ran. Field docstrings double as
`--help` text (tyro reads them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from trainables.errors import ConfigError

Dataset = Literal["digits", "visda"]
Proxy = Literal["synthetic", "heldout_fonts", "real_fewshot"]
Guidance = Literal["kl", "l2sp", "feature_l2", "csg"]
CsgPool = Literal["apool", "gap"]
Schedule = Literal["constant", "cosine", "step"]
BnMode = Literal["frozen", "train"]
RewardMetric = Literal["acc", "nll"]
VisdaTransform = Literal["asg", "augment"]
AmpMode = Literal["auto", "bf16", "off"]
Switch = Literal["auto", "on", "off"]
HeadInit = Literal["probe", "sgd"]
RateLevels = Literal["log", "linear"]
Model = Literal[
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50", "resnet101"
]
TrainDomain = Literal["synthetic", "real"]
Device = Literal["auto", "cpu", "cuda"]
PresetName = Literal["tiny", "embedded", "short", "visda"]

DATASETS = get_args(Dataset)
PROXIES = get_args(Proxy)
# The reward's proxy when --proxy is 'auto': chosen per dataset by experiments/reward_candidates.py
# (digits; VisDA has no fonts to hold out, so it keeps held-out renders).
AUTO_PROXY = {"digits": "heldout_fonts", "visda": "synthetic"}
GUIDANCES = get_args(Guidance)
CSG_POOLS = get_args(CsgPool)
SCHEDULES = get_args(Schedule)
BN_MODES = get_args(BnMode)
REWARD_METRICS = get_args(RewardMetric)
VISDA_TRANSFORMS = get_args(VisdaTransform)
AMP_MODES = get_args(AmpMode)
SWITCHES = get_args(Switch)
HEAD_INITS = get_args(HeadInit)
RATE_LEVELS = get_args(RateLevels)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"--{_flag(name)} {value!r} is not one of: {', '.join(choices)}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything a syn-to-real fine-tuning run depends on, except the per-episode seed."""

    dataset: Dataset = "digits"
    """Data: 'digits' (embedded benchmark: font-rendered digits -> scikit-learn's real digits) or
    'visda' (any folder in the VisDA-17 layout, see --data-root)."""
    data_root: str | None = None
    """VisDA-layout root holding train/image_list.txt and validation/image_list.txt, or, for a
    split without a list, one folder of images per class (train/<class>/*.jpg, as ImageFolder)."""
    num_classes: int = 0
    """Classes of a VisDA-layout tree, labelled 0..N-1 (0: the largest training label + 1, or
    the number of train/ class folders; VisDA-17 has 12). Every class must have training images."""
    verify_images: int = -1
    """Images the runs will read that are fully decoded before anything starts, so a corrupt
    file stops the launch in one line instead of a worker mid-run (VisDA only; -1: all of them,
    0: none, N: an even sample of N)."""
    model: Model = "efficientnet_lite0"
    """Backbone: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2 (ImageNet weights in
    pip packages; the three share their layer groups), resnet50, resnet101."""
    weights: str | None = None
    """Explicit ImageNet weights file (a state dict); default: the model's standard weights."""
    pretrained: bool = True
    """Start from ImageNet weights; false trains the same network from scratch."""
    image_size: int = 32
    """Input resolution in pixels."""
    train_domain: TrainDomain = "synthetic"
    """Training data: 'synthetic' (the task), or 'real' for the real-trained oracle (digits only):
    it trains on a random half of the real test pool and is scored on the other half."""
    num_train: int = 2000
    """Synthetic training images to render (digits only; VisDA uses its whole train list)."""
    proxy: Proxy | Literal["auto"] = "auto"
    """Proxy-validation split that feeds the reward: 'synthetic' (held-out renders, no real data),
    'heldout_fonts' (renders from fonts unseen in training; digits only), 'real_fewshot' (a
    small labelled real subset, disjoint from the test split: uses real labels) or 'auto'
    (heldout_fonts on digits, as chosen by experiments/reward_candidates.py; synthetic on
    VisDA)."""
    proxy_size: int = 300
    """Images in the proxy-validation split (synthetic / heldout_fonts)."""
    heldout_fonts: int = 4
    """Fonts kept out of synthetic training, for the 'heldout_fonts' proxy (digits only)."""
    fewshot_per_class: int = 10
    """Real images per class reserved for the 'real_fewshot' proxy; always excluded from test."""
    max_test: int = 0
    """Cap on real test images, class-balanced (0 = the whole real test split)."""
    data_seed: int = 0
    """Seed of the benchmark itself (rendering, split membership); fixed across episodes."""
    batch_size: int = 16
    """SGD mini-batch size."""
    eval_batch_size: int = 64
    """Batch size for proxy-validation and test evaluation. 64 is the fastest for the embedded
    benchmark on one CPU thread, as a run's worker has: 256 takes 1.49x as long, with the same
    accuracies (`python experiments/benchmark_env.py --parts evalbatch`)."""
    iters_per_window: int = 10
    """SGD iterations per window; the controller picks new rates once per window (one env step)."""
    windows: int = 8
    """Windows per fine-tuning run (env steps per episode)."""
    base_lr: float = 0.003
    """Base learning rate; a group's rate is base_lr x schedule(t) x its multiplier in [0, 1].
    The embedded preset's 0.01 was chosen on the held-out-font proxy (never the real split):
    a uniform sweep gave proxy 87.5% at rate 0.001, 80.1% at 0.002, 72.7% at 0.003, 34.7% at
    0.005 and 9.8% (chance) at 0.01 (results/base_rate_sweep). With the log-spaced levels the
    top of the range is the rate where a uniform schedule collapses the proxy, the best uniform
    rate (0.001) is multiplier 0.1, and the backbone can sit 10-100x below the head."""
    schedule: Schedule = "constant"
    """Base schedule over the run's iterations: 'constant' (ASG's controlled run: the controller
    alone shapes the rates), 'cosine' (half-cosine decay to zero) or 'step' (x0.1 at half the
    run, x0.01 at three quarters)."""
    bn_mode: BnMode = "frozen"
    """BatchNorm during fine-tuning: 'frozen' (ASG: the whole model in eval mode, so running
    statistics stay the ImageNet ones and a zero multiplier changes nothing) or 'train'
    (statistics follow the synthetic batches: a departure from ASG)."""
    head_init: HeadInit = "sgd"
    """How the new task head starts each run, before the first window: 'sgd' (random init, then
    --head-warmup-iters SGD iterations on the head alone, the rest at rate 0: it depends on the
    seed) or 'probe' (a linear probe: multinomial logistic regression fit to convergence with
    L-BFGS on the frozen pretrained features of the whole training set, computed once per
    process, without back-propagating through the backbone; the same head for every seed, as
    in LP-FT). 'probe' needs a linear head (--head-hidden 0) and a pretrained model."""
    probe_l2: float = 0.1
    """L2 penalty on the probe's weights (mean cross-entropy + probe_l2/2 x ||W||^2). Chosen on
    the proxy after fine-tuning, not on the probe's own proxy score: a nearly unregularised
    probe (1e-3: proxy 84%, weight norm 16) sends gradients large enough to wreck the backbone
    at backbone rate 0.0006 (proxy 10% after 40 iterations), while 0.1 (proxy 75%, norm 2.6)
    fine-tunes to 83% (one seed, 40 iterations; the sweep is in the README)."""
    head_warmup_iters: int = 10
    """With --head-init sgd: SGD iterations on the new task head alone (every other group at
    multiplier 0) before the first window, at the base rate; not part of the windows. The
    episode then starts from a rough linear probe, not a random head."""
    anneal_windows: int = 0
    """The last N windows run at --anneal-factor x every group's chosen rate (0: off). A low-rate
    tail settles the last iterate, which is what gets scored (a named option; ASG has none)."""
    anneal_factor: float = 0.1
    """Rate factor of the --anneal-windows tail."""
    average_windows: int = 0
    """Score the mean of the weights after every SGD iteration of the last N windows instead of
    the last iterate (0: off; a named option after SWA, ASG has none). With frozen BatchNorm
    the mean needs no recomputed statistics; the run's model becomes the mean when it ends."""
    wise_alphas: tuple[float, ...] = ()
    """WiSE-FT (Wortsman et al. 2022; a named option, ASG has none): after the last window the
    weights become (1 - alpha) x the run's start + alpha x the fine-tuned weights, for every
    parameter (the start is the pretrained backbone with the run's initial head: the linear
    probe with --head-init probe, the warmed-up head with --head-init sgd). Empty: off; one
    value: that alpha; several, space-separated: each is scored on the proxy split by the
    reward's metric (--reward-metric) and the best kept (ties: the largest alpha), and the run
    records the chosen alpha. Never the real split. Needs --bn-mode frozen (no running
    statistics to recompute); applied after --average-windows' mean."""
    rate_levels: RateLevels = "log"
    """The multipliers a discrete action picks from: 'linear' (ASG's 11 levels 0, 0.1, ..., 1)
    or 'log' (0 and the 1-2-5 series from 0.001 to 1: three decades, so that the head and the
    backbone can sit at rates 100x apart)."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """SGD weight decay."""
    guidance: Guidance = "kl"
    """Regulariser toward the pretrained model: 'kl' (ASG proxy guidance on the ImageNet head),
    'l2sp' (weight L2 to the pretrained weights), 'feature_l2' (L2 to the teacher's features)
    or 'csg' (CSG's contrastive guidance against a frozen ImageNet key encoder)."""
    guidance_weight: float = 0.1
    """Weight of the guidance term (0 = off; 0.1 is both ASG's and CSG's)."""
    csg_stages: tuple[str, ...] = ()
    """CSG: stages whose feature maps are contrasted, space-separated (none: the model's last
    two, layer3 layer4 on ResNets as published; the older comma-separated form is read too)."""
    csg_pool: CsgPool = "apool"
    """CSG: pooling of a stage's map: 'apool' (attentional pooling, as published) or 'gap'."""
    csg_key_augment: bool = True
    """CSG: the key view is an independently RandAugment-ed copy of the image (n=1, m=6, as
    published); off: the key encoder sees the training image itself."""
    csg_queue_size: int = 65536
    """CSG: keys kept per stage (published: 65536)."""
    csg_temperature: float = 0.07
    """CSG: InfoNCE temperature (published: 0.07)."""
    csg_momentum: float = 0.999
    """CSG: EMA momentum of the key projection heads (published: 0.999)."""
    csg_dim: int = 128
    """CSG: projection dimension (published: 128)."""
    reward_metric: RewardMetric = "acc"
    """What the reward measures on the proxy split: 'acc' (mean per-class accuracy) or 'nll'
    (minus the mean negative log-likelihood: keeps moving after accuracy saturates)."""
    reward_retention: float = 0.0
    """Weight of ImageNet retention in the reward: the score is the proxy metric minus this
    times KL(frozen teacher || model) on natural photos (0 = off; photos, never target data)."""
    flip_eval: bool = False
    """Average predictions over the image and its mirror at evaluation (ASG's evaluation)."""
    head_hidden: int = 0
    """Hidden units of the new task head: 0 for one linear layer, 512 for ASG's VisDA head
    Linear(D, 512) - ReLU - Linear(512, classes)."""
    visda_transform: VisdaTransform = "asg"
    """VisDA images: 'asg' (ASG's recipe, train and evaluation alike: resize the short side to
    --image-size, centre crop, no augmentation) or 'augment' (a departure: random resized crop
    and flip in training; resize to 256/224 of the size and centre crop at evaluation)."""
    image_cache: str = ""
    """Folder on local disk for decoded, resized VisDA images ('' off, 'auto' a folder under the
    system temp dir); used only with the deterministic 'asg' transform and only where the
    images fit in the free space (otherwise one line says so and it stays off)."""
    num_workers: int = 0
    """DataLoader worker processes for VisDA decoding, kept alive across windows (-1: one fewer
    than the CPUs the run may use, at most 8)."""
    amp: AmpMode = "auto"
    """Mixed precision: 'auto' (bf16 autocast on CUDA, off on the CPU), 'bf16' or 'off'."""
    channels_last: Switch = "auto"
    """NHWC memory format for the model and images: 'auto' (on CUDA), 'on' or 'off'."""
    device: Device = "auto"
    """'auto' (CUDA when available), 'cpu' or 'cuda'."""

    def __post_init__(self) -> None:
        stages = self.csg_stages  # "layer3,layer4" from older results.json files and callers
        stages = stages.split(",") if isinstance(stages, str) else stages
        object.__setattr__(self, "csg_stages", tuple(s for s in stages if s))
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("proxy", self.proxy, (*PROXIES, "auto"))
        _check_choice("guidance", self.guidance, GUIDANCES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("bn_mode", self.bn_mode, BN_MODES)
        _check_choice("reward_metric", self.reward_metric, REWARD_METRICS)
        _check_choice("train_domain", self.train_domain, ("synthetic", "real"))
        _check_choice("visda_transform", self.visda_transform, VISDA_TRANSFORMS)
        _check_choice("csg_pool", self.csg_pool, CSG_POOLS)
        if self.csg_queue_size < 1 or self.csg_dim < 1 or self.csg_temperature <= 0:
            raise ConfigError("--csg-queue-size, --csg-dim and --csg-temperature must be > 0")
        if not 0.0 <= self.csg_momentum < 1.0:
            raise ConfigError(f"--csg-momentum must be in [0, 1), got {self.csg_momentum}")
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("channels_last", self.channels_last, SWITCHES)
        if self.head_hidden < 0 or self.num_workers < -1:
            raise ConfigError("--head-hidden must be >= 0 and --num-workers >= -1")
        if self.dataset == "visda" and self.train_domain == "real":
            raise ConfigError("--train-domain real (the oracle) needs --dataset digits")
        if self.dataset == "visda" and self.reward_proxy == "heldout_fonts":
            raise ConfigError("--proxy heldout_fonts needs --dataset digits (VisDA has no fonts)")
        for name in ("image_size", "batch_size", "eval_batch_size", "iters_per_window", "windows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 0:
            raise ConfigError(f"--num-classes must be >= 0, got {self.num_classes}")
        _check_choice("head_init", self.head_init, HEAD_INITS)
        _check_choice("rate_levels", self.rate_levels, RATE_LEVELS)
        if self.head_init == "probe" and (
            self.head_hidden or not self.pretrained or self.dataset != "digits"
        ):
            raise ConfigError(
                "--head-init probe needs a linear head (--head-hidden 0), a pretrained model "
                "and in-memory images (--dataset digits); use --head-init sgd"
            )
        if self.anneal_windows < 0 or self.anneal_windows > self.windows:
            raise ConfigError(
                f"--anneal-windows must be in [0, --windows], got {self.anneal_windows}"
            )
        if self.average_windows < 0 or self.average_windows > self.windows:
            raise ConfigError(
                f"--average-windows must be in [0, --windows], got {self.average_windows}"
            )
        if self.average_windows and self.bn_mode != "frozen":
            raise ConfigError("--average-windows needs --bn-mode frozen (no statistics to redo)")
        alphas = self.wise_alphas  # "0.5,1" from --variant and older callers, as csg_stages
        alphas = alphas.replace(",", " ").split() if isinstance(alphas, str) else alphas
        try:
            object.__setattr__(self, "wise_alphas", tuple(float(a) for a in alphas))
        except (TypeError, ValueError):
            raise ConfigError(f"--wise-alphas: {alphas!r} is not a list of numbers") from None
        if any(not 0.0 <= a <= 1.0 for a in self.wise_alphas):
            raise ConfigError(f"--wise-alphas must be in [0, 1], got {self.wise_alphas}")
        if self.wise_alphas and self.bn_mode != "frozen":
            raise ConfigError("--wise-alphas needs --bn-mode frozen (no statistics to redo)")
        if not 0.0 <= self.anneal_factor <= 1.0 or self.probe_l2 < 0:
            raise ConfigError("--anneal-factor must be in [0, 1] and --probe-l2 >= 0")
        if self.head_warmup_iters < 0 or self.reward_retention < 0:
            raise ConfigError("--head-warmup-iters and --reward-retention must be >= 0")
        if self.verify_images < -1:
            raise ConfigError(f"--verify-images must be >= -1, got {self.verify_images}")
        if self.base_lr < 0 or self.guidance_weight < 0:
            raise ConfigError("--base-lr and --guidance-weight must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {self.device!r}")

    @property
    def reward_proxy(self) -> str:
        """The proxy split that feeds the reward ('auto' resolved for the dataset)."""
        return AUTO_PROXY[self.dataset] if self.proxy == "auto" else self.proxy

    @property
    def total_iters(self) -> int:
        return self.iters_per_window * self.windows

    def replace(self, **overrides: Any) -> FinetuneConfig:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


PRESETS: dict[str, FinetuneConfig] = {
    # Seconds to build, about half a second per step on one CPU core: tests and smoke runs
    # (about 2.4 CPU-seconds per episode; its numbers mean nothing).
    "tiny": FinetuneConfig(
        num_train=200,
        proxy_size=50,
        fewshot_per_class=5,
        max_test=100,
        batch_size=8,
        eval_batch_size=128,
        iters_per_window=2,
        windows=3,
        head_warmup_iters=2,
    ),
    # The embedded benchmark: a linear-probe head start, then 8 windows of 30 iterations at
    # batch 48 (about six epochs of the 2,000 renders), the last two at a tenth of the chosen
    # rates; base rate 0.01 under log-spaced levels. Each setting lowered the paired noise
    # between schedules (results/benchmark_levers, results/benchmark_batch: batch 48 brings
    # the paired sd from 2.7 at batch 16 to 1.1); about 75 s per run on one CPU core.
    # `--batch-size 16` is the benchmark of the results measured before batch 48.
    "embedded": FinetuneConfig(
        head_init="probe", iters_per_window=30, anneal_windows=2, base_lr=0.01, batch_size=48
    ),
    # The embedded benchmark's short-horizon twin, for meta-training: the same model, head
    # start, rates and 8 windows, but 3 iterations per window on 1000 renders.
    "short": FinetuneConfig(
        head_init="probe",
        anneal_windows=2,
        base_lr=0.01,
        num_train=1000,
        proxy_size=200,
        max_test=300,
        iters_per_window=3,
        batch_size=48,
    ),
    # VisDA-17 with ResNet-101 at 224 px in ASG's released recipe (see `asg_departures`):
    # batch 32, base rate 1e-4 for every group, frozen BatchNorm, the two-layer head, no
    # training augmentation, mirror-averaged mean-class accuracy. Needs --data-root and a GPU.
    "visda": FinetuneConfig(
        dataset="visda",
        model="resnet101",
        image_size=224,
        proxy_size=2000,
        batch_size=32,
        eval_batch_size=128,
        iters_per_window=500,
        windows=20,
        base_lr=1e-4,
        head_warmup_iters=100,
        head_hidden=512,
        rate_levels="linear",
        flip_eval=True,
        image_cache="auto",
        num_workers=-1,
    ),
}

# ASG's released VisDA-17 classification recipe, field by field (../shared notes; `l2o_train.py`).
ASG_VISDA_RECIPE: dict[str, Any] = {
    "model": "resnet101",
    "image_size": 224,
    "batch_size": 32,
    "base_lr": 1e-4,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "bn_mode": "frozen",
    "schedule": "constant",
    "head_hidden": 512,
    "visda_transform": "asg",
    "flip_eval": True,
    "guidance": "kl",
    "guidance_weight": 0.1,
    "rate_levels": "linear",
    "anneal_windows": 0,
    "average_windows": 0,
    "wise_alphas": (),
}


def asg_departures(cfg: FinetuneConfig) -> list[str]:
    """Where a VisDA run departs from ASG's recipe, as 'field=value (ASG: value)'; empty for
    the faithful protocol. Results files record it, so a table says which protocol ran."""
    if cfg.dataset != "visda":
        return []
    return [
        f"{k}={getattr(cfg, k)!r} (ASG: {v!r})"
        for k, v in ASG_VISDA_RECIPE.items()
        if getattr(cfg, k) != v
    ]


def protocol(cfg: FinetuneConfig) -> str:
    """One line for results files: which protocol a run followed."""
    if cfg.dataset != "visda":
        head = (
            f"a linear-probe head start (L2 {cfg.probe_l2:g})"
            if cfg.head_init == "probe"
            else f"{cfg.head_warmup_iters} head-only SGD iterations"
        )
        tail = (
            f", the last {cfg.anneal_windows} at {cfg.anneal_factor:g}x the chosen rates"
            if cfg.anneal_windows
            else ""
        ) + (
            f", scoring the mean weights of the last {cfg.average_windows} windows"
            if cfg.average_windows
            else ""
        )
        if cfg.wise_alphas:
            picked = " (picked on the proxy)" if len(cfg.wise_alphas) > 1 else ""
            tail += f", ending at WiSE-FT alpha {'/'.join(f'{a:g}' for a in cfg.wise_alphas)}"
            tail += picked
        return (
            f"embedded digits benchmark: {head}, then {cfg.windows} windows x "
            f"{cfg.iters_per_window} SGD iterations at batch {cfg.batch_size}{tail}; base rate "
            f"{cfg.base_lr:g} x multipliers from the {cfg.rate_levels} levels; {cfg.image_size} px "
            f"(no VisDA recipe applies)"
        )
    departures = asg_departures(cfg)
    if not departures:
        return "ASG's VisDA-17 recipe"
    return "ASG's VisDA-17 recipe with departures: " + "; ".join(departures)


def preset(name: str, **overrides: Any) -> FinetuneConfig:
    """The named preset with keyword overrides applied."""
    _check_choice("preset", name, tuple(PRESETS))
    return PRESETS[name].replace(**overrides)
