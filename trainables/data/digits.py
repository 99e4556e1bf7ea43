"""Embedded synthetic-to-real digits benchmark (no download needed).

* Real target: ``sklearn.datasets.load_digits()`` - 1797 handwritten digits as 8x8 images whose
  17 grey levels (0..16) count the ink pixels of 4x4 blocks of a 32x32 bitmap (UCI optdigits).
* Synthetic source: the digits 0-9 drawn with Pillow from the TrueType fonts that matplotlib
  bundles, randomly rotated, sheared, stretched and thickened, then reduced with the optdigits
  recipe (binarise, crop to the glyph, fit into 32x32 keeping the aspect ratio, count the ink
  pixels of each 4x4 block).

Both domains keep ink bright (high level) on a dark background.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from trainables.errors import ConfigError, DataError
from trainables.imagenet import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Rendering recipe (see render_digits).
_CANVAS = 160  # square canvas (px) the glyph is drawn on
_FONT_SIZES = tuple(range(64, 97, 8))  # em size (px): digit glyphs are ~45-70 px tall
_MAX_STROKE = 2  # extra outline (px) drawn around the glyph: 0.._MAX_STROKE
_MAX_ROTATION_DEG = 15.0
_MAX_SHEAR = 0.35
_STRETCH_RANGE = (0.6, 1.0)  # horizontal squeeze, log-uniform: handwriting is narrower
_BLUR_PROB = 0.5
_BITMAP = 32  # optdigits bitmap size
_BLOCK = 4  # optdigits block size -> 8x8 images with levels 0..16


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _cmap_has_digits(path: Path) -> bool:
    """True when the font's character map sends U+0030..U+0039 to digit glyphs."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), lazy=True) as font:
            cmap = font.getBestCmap() or {}
    except Exception:  # unreadable or not a font: not usable
        return False
    for digit, name in enumerate(_DIGIT_NAMES):
        glyph = cmap.get(0x30 + digit)
        if glyph is None:
            return False
        # "zero", "zerooldstyle", "zero.lf", "uni0030": all draw the digit.
        if not (glyph.startswith(name) or glyph.lower() == f"uni{0x30 + digit:04x}"):
            return False
    return True


def _glyphs_drawn(path: Path) -> bool:
    """True when the font draws 10 non-blank, pairwise different bitmaps for the digits."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(str(path), 48)
    except OSError:
        return False
    bitmaps = []
    for digit in DIGIT_CLASSES:
        image = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(image).text((48, 48), digit, fill=255, font=font, anchor="mm")
        bitmap = np.asarray(image) >= 128
        if bitmap.sum() < 20:
            return False
        bitmaps.append(bitmap.tobytes())
    return len(set(bitmaps)) == len(bitmaps)


@functools.cache
def _usable_fonts() -> tuple[Path, ...]:
    fonts = sorted(_font_dir().glob("*.ttf"))
    key = _cache_key("fonts", [(p.name, p.stat().st_size) for p in fonts])
    cached = _cache_read(key)
    if cached is not None:
        names = set(str(n) for n in cached["names"])
        return tuple(p for p in fonts if p.name in names)
    usable = tuple(p for p in fonts if _cmap_has_digits(p) and _glyphs_drawn(p))
    _cache_write(key, names=np.array([p.name for p in usable]))
    return usable


# ---- a disk cache shared by the processes of one machine (env runners, Tune actors) -------
_CACHE_VERSION = 1  # bump when the rendering recipe changes


def cache_dir() -> Path | None:
    """Where renders and the font scan are kept between processes: $ASG_CACHE ('' or 'off'
    turns it off), else ~/.cache/asg-ray. None when off."""
    import os

    value = os.environ.get("ASG_CACHE", str(Path.home() / ".cache" / "asg-ray"))
    return None if value in ("", "off") else Path(value)


def _cache_key(kind: str, parts) -> str:
    import hashlib

    return f"{kind}-" + hashlib.sha256(repr((_CACHE_VERSION, parts)).encode()).hexdigest()[:24]


def _cache_read(key: str) -> dict[str, np.ndarray] | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with np.load(folder / f"{key}.npz") as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError):  # absent, or unreadable: render again
        return None


def _cache_write(key: str, **arrays: np.ndarray) -> None:
    """Atomic: a process killed mid-write leaves no file that a reader could take."""
    import os
    import tempfile

    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, folder / f"{key}.npz")
    except OSError:  # a read-only or full disk only costs the next process a render
        return


def list_digit_fonts() -> list[Path]:
    """Sorted list of matplotlib's bundled TrueType fonts that draw all ten digits.

    Fonts whose character map sends the digits to other glyphs (symbol fonts such as cmsy10 and
    cmex10), that draw nothing (STIXSize*, STIXNonUni*, DejaVu*Display) or that draw the same
    glyph for several digits (LastResortHE) are excluded.
    """
    fonts = list(_usable_fonts())
    if not fonts:
        raise DataError(f"no TrueType font drawing the digits 0-9 found in {_font_dir()}")
    return fonts


def split_fonts(fonts: list[Path], n_heldout: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Split fonts into disjoint (train_fonts, heldout_fonts), both sorted, deterministically.

    ``n_heldout`` fonts are held out, chosen by ``numpy.random.default_rng(seed)`` from the sorted
    unique fonts; at least one font is left for training.
    """
    unique = sorted({Path(f) for f in fonts})
    if isinstance(n_heldout, bool) or not isinstance(n_heldout, int | np.integer):
        raise ConfigError(f"n_heldout must be an integer, got {n_heldout!r}")
    if not 0 <= n_heldout < len(unique):
        raise ConfigError(
            f"n_heldout must be in [0, {len(unique) - 1}] for {len(unique)} fonts, got {n_heldout}"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    heldout = sorted(unique[i] for i in order[:n_heldout])
    train = sorted(unique[i] for i in order[n_heldout:])
    return train, heldout


@functools.cache
def _font(path: Path, size: int) -> FreeTypeFont:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(path), size)
    except OSError as err:
        raise DataError(f"cannot load font {path}: {err}") from err


def _binary_lut(threshold: int) -> list[int]:
    return [0] * threshold + [255] * (256 - threshold)


def _render_one(
    digit: str,
    path: Path,
    size: int,
    stroke: int,
    angle: float,
    shear: float,
    stretch: float,
    blur: float,
    threshold: int,
) -> np.ndarray:
    """Draw one digit and reduce it to an 8x8 uint8 image of ink counts (0..16)."""
    from PIL import Image, ImageDraw, ImageFilter

    centre = _CANVAS / 2
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(image).text(
        (centre, centre),
        digit,
        fill=255,
        font=_font(path, size),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    # Forward map about the centre: stretch x, shear x by y, then rotate. PIL wants the inverse.
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[stretch, shear], [0.0, 1.0]])
    inv = np.linalg.inv(forward)
    offset = np.array([centre, centre]) - inv @ np.array([centre, centre])
    coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    image = image.transform(
        (_CANVAS, _CANVAS), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    if blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    image = image.point(_binary_lut(threshold))
    box = image.getbbox()
    if box is None:
        return np.zeros((_BITMAP // _BLOCK, _BITMAP // _BLOCK), dtype=np.uint8)
    image = image.crop(box)
    width, height = image.size
    scale = _BITMAP / max(width, height)
    new_w = min(_BITMAP, max(1, round(width * scale)))
    new_h = min(_BITMAP, max(1, round(height * scale)))
    image = image.resize((new_w, new_h), Image.Resampling.BOX).point(_binary_lut(128))
    top, left = (_BITMAP - new_h) // 2, (_BITMAP - new_w) // 2
    out = np.zeros((_BITMAP, _BITMAP), dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = np.asarray(image) > 0
    blocks = _BITMAP // _BLOCK
    return out.reshape(blocks, _BLOCK, blocks, _BLOCK).sum(axis=(1, 3), dtype=np.uint8)


def render_digits(n: int, fonts: list[Path], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` synthetic digits in the optdigits format.

    Returns (images uint8 [n, 8, 8] with levels 0..16, labels int64 [n]). The classes are
    balanced (``i % 10``, shuffled), fonts are sampled uniformly, and each digit gets a random
    font size, stroke width, rotation (+-15 deg), shear (+-0.35), horizontal stretch, optional
    blur and binarisation threshold. Deterministic given ``seed`` and ``fonts``, so a process
    renders each (n, fonts, seed) once and hands out copies: every env of a reused Ray actor
    or of a test process builds on the same renders.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"n must be a non-negative integer, got {n!r}")
    if not fonts:
        raise ConfigError("render_digits needs at least one font")
    images, labels = _rendered(int(n), tuple(Path(f) for f in fonts), int(seed))
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=16)
def _rendered(n: int, fonts: tuple[Path, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders from this process's memory, else from the disk cache, else drawn (and cached)."""
    key = _cache_key("digits", (n, [(p.name, p.stat().st_size) for p in fonts], seed))
    cached = _cache_read(key)
    if cached is not None:
        return cached["images"], cached["labels"]
    images, labels = _draw(n, fonts, seed)
    _cache_write(key, images=images, labels=labels)
    return images, labels


def _draw(n: int, fonts: tuple[Path, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % 10)
    font_idx = rng.integers(len(fonts), size=n)
    sizes = rng.integers(len(_FONT_SIZES), size=n)
    strokes = rng.integers(_MAX_STROKE + 1, size=n)
    angles = np.deg2rad(rng.uniform(-_MAX_ROTATION_DEG, _MAX_ROTATION_DEG, size=n))
    shears = rng.uniform(-_MAX_SHEAR, _MAX_SHEAR, size=n)
    stretches = np.exp(rng.uniform(*np.log(_STRETCH_RANGE), size=n))
    blurs = np.where(rng.random(size=n) < _BLUR_PROB, rng.uniform(0.5, 2.0, size=n), 0.0)
    thresholds = rng.integers(64, 193, size=n)
    images = np.empty((n, _BITMAP // _BLOCK, _BITMAP // _BLOCK), dtype=np.uint8)
    for i in range(n):
        images[i] = _render_one(
            DIGIT_CLASSES[labels[i]],
            fonts[font_idx[i]],
            _FONT_SIZES[sizes[i]],
            int(strokes[i]),
            float(angles[i]),
            float(shears[i]),
            float(stretches[i]),
            float(blurs[i]),
            int(thresholds[i]),
        )
    return images, labels


def load_real_digits() -> tuple[np.ndarray, np.ndarray]:
    """The real target domain: sklearn's digits as (uint8 [1797, 8, 8] levels 0..16, int64).

    Read from the file scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`: 64 levels and
    the label per row), what `sklearn.datasets.load_digits` reads, without importing sklearn:
    that import costs every process that builds an env about 2 s of CPU."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    if spec is None or spec.origin is None:
        raise DataError("the real digits need scikit-learn installed (pip install scikit-learn)")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not csv.is_file():
        raise DataError(f"scikit-learn's digits file is missing: {csv}")
    rows = np.loadtxt(csv, delimiter=",", dtype=np.float64)
    images = rows[:, :64].reshape(-1, 8, 8).round().clip(0, 16).astype(np.uint8)
    return images, rows[:, 64].astype(np.int64)


def levels_to_tensor(images: np.ndarray, image_size: int) -> torch.Tensor:
    """Turn uint8 [n, 8, 8] levels 0..16 into a float32 [n, 3, image_size, image_size] tensor.

    Levels are scaled to [0, 1] (ink bright), resized bilinearly (``align_corners=False``),
    repeated to 3 channels and normalised with the ImageNet mean and standard deviation.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise DataError(f"expected digit images of shape [n, 8, 8], got {list(images.shape)}")
    if images.size and (images.min() < 0 or images.max() > 16):
        raise DataError("digit levels must lie in 0..16")
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ConfigError(f"image_size must be an integer, got {image_size!r}")
    if image_size < 1:
        raise ConfigError(f"image_size must be positive, got {image_size}")
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    size = int(image_size)
    if x.shape[0] == 0:
        x = x.new_zeros((0, 1, size, size))
    elif size != 8:
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False
        )
    x = x.repeat(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()
