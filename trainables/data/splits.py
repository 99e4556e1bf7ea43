"""The three splits a syn-to-real run keeps apart: synthetic train, proxy-validation, real test.

The proxy-validation split feeds the controller's reward; the real test split is used only for
final reporting. The real few-shot pool is always removed from the test split, whichever proxy is
chosen, so every proxy choice is scored on the same test images.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from trainables.config import FinetuneConfig
from trainables.errors import ConfigError


@dataclass
class Splits:
    train: Dataset
    proxies: dict[str, Dataset]
    """Every proxy-validation split this data offers, by name; `proxy_val` is the chosen one."""
    chosen_proxy: str
    test: Dataset
    classes: tuple[str, ...]

    @property
    def proxy_val(self) -> Dataset:
        return self.proxies[self.chosen_proxy]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def balanced_pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` random samples of each class (all of a class if it has fewer)."""
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def _cap_balanced(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if cap <= 0 or cap >= len(labels):
        return np.arange(len(labels))
    per_class = max(1, cap // len(np.unique(labels)))
    return balanced_pick(labels, per_class, rng)


def build_splits(cfg: FinetuneConfig) -> Splits:
    if cfg.dataset == "digits":
        return _digits_splits(cfg)
    return _visda_splits(cfg)


def _tensor_dataset(images: np.ndarray, labels: np.ndarray, size: int) -> TensorDataset:
    from trainables.data.digits import levels_to_tensor

    return TensorDataset(levels_to_tensor(images, size), torch.as_tensor(labels, dtype=torch.long))


def _digits_splits(cfg: FinetuneConfig) -> Splits:
    from trainables.data import digits

    rng = np.random.default_rng(cfg.data_seed)
    train_fonts, heldout_fonts = digits.split_fonts(
        digits.list_digit_fonts(), cfg.heldout_fonts, seed=cfg.data_seed
    )
    train_x, train_y = digits.render_digits(cfg.num_train, train_fonts, seed=cfg.data_seed)

    real_x, real_y = digits.load_real_digits()
    fewshot = balanced_pick(real_y, cfg.fewshot_per_class, rng)
    rest = np.setdiff1d(np.arange(len(real_y)), fewshot)
    if cfg.train_domain == "real":  # the oracle: half the real pool to train, half to score
        perm = np.random.default_rng(cfg.data_seed + 3).permutation(rest)
        real_train, rest = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2 :])
        train_x, train_y = real_x[real_train], real_y[real_train]
    test = rest[_cap_balanced(real_y[rest], cfg.max_test, rng)]

    # Every proxy is built (a few hundred renders each) so that runs can report how well each
    # one tracks real accuracy; only `cfg.reward_proxy` feeds the reward.
    size = cfg.image_size
    # Same fonts as training with fresh randomisation, and unseen fonts: separate seed streams.
    syn_x, syn_y = digits.render_digits(cfg.proxy_size, train_fonts, seed=cfg.data_seed + 1)
    font_x, font_y = digits.render_digits(cfg.proxy_size, heldout_fonts, seed=cfg.data_seed + 2)
    return Splits(
        train=_tensor_dataset(train_x, train_y, size),
        proxies={
            "synthetic": _tensor_dataset(syn_x, syn_y, size),
            "heldout_fonts": _tensor_dataset(font_x, font_y, size),
            "real_fewshot": _tensor_dataset(real_x[fewshot], real_y[fewshot], size),
        },
        chosen_proxy=cfg.reward_proxy,
        test=_tensor_dataset(real_x[test], real_y[test], size),
        classes=digits.DIGIT_CLASSES,
    )


def _image_cache(cfg: FinetuneConfig, num_images: int):
    """The on-disk image cache `cfg` asks for, or None (off, an augmenting transform, or the
    images would not fit: then one line says so)."""
    from trainables.data.image_list import ImageCache

    if not cfg.image_cache or cfg.visda_transform != "asg":
        return None
    folder = Path(cfg.image_cache)
    if cfg.image_cache == "auto":
        folder = Path(tempfile.gettempdir()) / "asg-image-cache"
    fits, why = ImageCache.fits(folder, num_images, cfg.image_size)
    if not fits:
        print(f"[asg] image cache off: {why}", flush=True)
        return None
    return ImageCache(folder, cfg.image_size)


def _visda_splits(cfg: FinetuneConfig) -> Splits:
    from trainables.data import image_list as il

    if cfg.data_root is None:
        raise ConfigError("--data-root is required with --dataset visda")
    syn, real = il.load_visda_lists(Path(cfg.data_root), num_classes=cfg.num_classes)
    rng = np.random.default_rng(cfg.data_seed)
    syn_y, real_y = np.asarray(syn.labels), np.asarray(real.labels)

    cache = _image_cache(cfg, len(syn.paths) + len(real.paths))

    def subset(lst: il.ImageList, idx: np.ndarray, train: bool) -> il.ImageListDataset:
        return il.ImageListDataset(
            [lst.paths[i] for i in idx],
            [lst.labels[i] for i in idx],
            il.visda_transforms(
                cfg.image_size, train=train, kind=cfg.visda_transform, cached=cache is not None
            ),
            cache,
        )

    fewshot = balanced_pick(real_y, cfg.fewshot_per_class, rng)
    rest = np.setdiff1d(np.arange(len(real_y)), fewshot)
    test = rest[_cap_balanced(real_y[rest], cfg.max_test, rng)]
    proxies = {"real_fewshot": subset(real, fewshot, train=False)}
    train_idx = np.arange(len(syn_y))
    if cfg.reward_proxy == "synthetic":  # held out of training only when it is the chosen proxy
        n_proxy = min(cfg.proxy_size, len(syn_y) // 5)
        perm = rng.permutation(len(syn_y))
        proxy_idx, train_idx = np.sort(perm[:n_proxy]), np.sort(perm[n_proxy:])
        proxies["synthetic"] = subset(syn, proxy_idx, train=False)
    return Splits(
        train=subset(syn, train_idx, train=True),
        proxies=proxies,
        chosen_proxy=cfg.reward_proxy,
        test=subset(real, test, train=False),
        classes=syn.classes,
    )
