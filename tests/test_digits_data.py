"""Tests for the embedded synthetic-to-real digits benchmark (trainables/data/digits.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import digits
from trainables.data.digits import (
    DIGIT_CLASSES,
    levels_to_tensor,
    list_digit_fonts,
    load_real_digits,
    render_digits,
    split_fonts,
)
from trainables.errors import ConfigError, DataError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def fonts() -> list[Path]:
    return list_digit_fonts()


@pytest.fixture(scope="module")
def rendered(fonts: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    return render_digits(2000, fonts, seed=0)


def test_digit_classes() -> None:
    assert DIGIT_CLASSES == ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


def test_fonts_usable_sorted_and_deterministic(fonts: list[Path]) -> None:
    assert len(fonts) >= 10
    assert fonts == sorted(fonts)
    assert len(set(fonts)) == len(fonts)
    assert all(isinstance(f, Path) and f.is_file() and f.suffix == ".ttf" for f in fonts)
    digits._usable_fonts.cache_clear()
    assert list_digit_fonts() == fonts
    assert list_digit_fonts() is not list_digit_fonts()  # callers may mutate their copy


def test_fonts_exclude_symbol_and_blank_faces(fonts: list[Path]) -> None:
    names = {f.name for f in fonts}
    assert {"DejaVuSans.ttf", "DejaVuSerif.ttf", "cmr10.ttf", "STIXGeneral.ttf"} <= names
    # Digits mapped to symbols, not drawn at all, or all the same glyph.
    for bad in ("cmsy10.ttf", "cmex10.ttf", "DejaVuSansDisplay.ttf", "LastResortHE-Regular.ttf"):
        assert bad not in names
    assert not any(n.startswith(("STIXSiz", "STIXNonUni")) for n in names)


def test_split_fonts_disjoint_and_deterministic(fonts: list[Path]) -> None:
    train, heldout = split_fonts(fonts, 4, seed=0)
    assert len(heldout) == 4 and len(train) == len(fonts) - 4
    assert not set(train) & set(heldout)
    assert set(train) | set(heldout) == set(fonts)
    assert train == sorted(train) and heldout == sorted(heldout)
    assert split_fonts(fonts, 4, seed=0) == (train, heldout)
    assert split_fonts(list(reversed(fonts)), 4, seed=0) == (train, heldout)
    others = {tuple(split_fonts(fonts, 4, seed=s)[1]) for s in range(1, 6)}
    assert others - {tuple(heldout)}  # the seed changes the split
    assert split_fonts(fonts, 0) == (fonts, [])


@pytest.mark.parametrize("n_heldout", [-1, "all", 1.5])
def test_split_fonts_rejects_bad_n_heldout(fonts: list[Path], n_heldout: object) -> None:
    with pytest.raises(ConfigError):
        split_fonts(fonts, n_heldout)  # type: ignore[arg-type]


def test_split_fonts_must_leave_training_fonts(fonts: list[Path]) -> None:
    with pytest.raises(ConfigError):
        split_fonts(fonts, len(fonts))
    with pytest.raises(ConfigError):
        split_fonts(fonts, len(fonts) + 3)
    with pytest.raises(ConfigError):
        split_fonts([], 0)


def test_render_shape_dtype_range_and_balance(rendered: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = rendered
    assert images.shape == (2000, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (2000,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 200))
    assert not np.array_equal(labels[:20], np.arange(20) % 10)  # shuffled
    assert (images.reshape(2000, -1).sum(1) > 0).all()  # every digit has ink
    # optdigits-like: the glyph is fitted to the 32x32 bitmap, so it spans the full height.
    assert (images[:, 0].max(1) > 0).mean() > 0.9 and (images[:, 7].max(1) > 0).mean() > 0.9
    assert 2.0 < images.mean() < 8.0


def test_render_small_and_empty(fonts: list[Path]) -> None:
    images, labels = render_digits(0, fonts, seed=0)
    assert images.shape == (0, 8, 8) and labels.shape == (0,)
    images, labels = render_digits(7, fonts[:1], seed=3)
    assert images.shape == (7, 8, 8) and sorted(labels.tolist()) == [0, 1, 2, 3, 4, 5, 6]


def test_render_rejects_bad_arguments(fonts: list[Path]) -> None:
    with pytest.raises(ConfigError):
        render_digits(-1, fonts, seed=0)
    with pytest.raises(ConfigError):
        render_digits(10, [], seed=0)


def test_render_deterministic(fonts: list[Path]) -> None:
    images, labels = render_digits(200, fonts, seed=0)
    digits._rendered.cache_clear()  # render again, not the process's copy
    again = render_digits(200, fonts, seed=0)
    assert images.tobytes() == again[0].tobytes()
    assert labels.tobytes() == again[1].tobytes()
    other = render_digits(200, fonts, seed=1)
    assert images.tobytes() != other[0].tobytes()


def test_rendered_digits_are_copies_a_caller_may_change(fonts: list[Path]) -> None:
    images, labels = render_digits(30, fonts, seed=4)
    images[:] = 0
    labels[:] = -1
    again, again_labels = render_digits(30, fonts, seed=4)
    assert again.any() and (again_labels >= 0).all()


def test_real_digits_are_sklearns() -> None:
    from sklearn.datasets import load_digits

    images, labels = load_real_digits()
    reference = load_digits()
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.array_equal(images, reference.images.astype(np.uint8))
    assert np.array_equal(labels, reference.target)


def test_render_uses_the_given_fonts(fonts: list[Path]) -> None:
    train, heldout = split_fonts(fonts, 2, seed=0)
    a, _ = render_digits(100, train, seed=5)
    b, _ = render_digits(100, heldout, seed=5)
    assert a.tobytes() != b.tobytes()


def test_real_digits() -> None:
    images, labels = load_real_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.max() == 16 and images.min() == 0
    assert set(labels.tolist()) == set(range(10))


def test_levels_to_tensor_shape_and_normalisation() -> None:
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    images[1] = 16
    images[2, :, 4:] = 16
    x = levels_to_tensor(images, 32)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    torch.testing.assert_close(x[0], (-MEAN / STD)[0].expand(3, 32, 32))
    torch.testing.assert_close(x[1], ((1 - MEAN) / STD)[0].expand(3, 32, 32))
    # Ink stays bright: the right half (ink) is above the left half (background).
    assert (x[2, :, :, 24:] > x[2, :, :, :8]).all()
    # Bilinear resize, align_corners=False, is what the model sees.
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images[2:3].astype(np.float32) / 16).unsqueeze(1),
        size=(32, 32),
        mode="bilinear",
        align_corners=False,
    )
    torch.testing.assert_close(x[2:3], (ref.repeat(1, 3, 1, 1) - MEAN) / STD)
    assert levels_to_tensor(images, 8).shape == (3, 3, 8, 8)
    assert levels_to_tensor(images[:0], 16).shape == (0, 3, 16, 16)


def test_levels_to_tensor_rejects_bad_input() -> None:
    with pytest.raises(DataError):
        levels_to_tensor(np.zeros((2, 8, 9), dtype=np.uint8), 32)
    with pytest.raises(DataError):
        levels_to_tensor(np.full((2, 8, 8), 17, dtype=np.uint8), 32)
    with pytest.raises(ConfigError):
        levels_to_tensor(np.zeros((2, 8, 8), dtype=np.uint8), 0)


def test_synthetic_digits_resemble_real_ones(rendered: tuple[np.ndarray, np.ndarray]) -> None:
    """A classifier trained on rendered digits only must recognise real handwriting.

    The recipe gives ~0.59 real accuracy with a nearest-centroid classifier (~0.61 with
    logistic regression); chance is 0.10.
    """
    from sklearn.neighbors import NearestCentroid

    images, labels = rendered
    real_images, real_labels = load_real_digits()
    clf = NearestCentroid().fit(images.reshape(len(images), -1) / 16.0, labels)
    accuracy = (clf.predict(real_images.reshape(len(real_images), -1) / 16.0) == real_labels).mean()
    assert accuracy > 0.5, accuracy


def test_renders_are_cached_on_disk_exactly_and_a_bad_cache_file_is_redrawn(tmp_path, monkeypatch):
    """Each process (env runner, Tune actor) reads the renders another process drew."""
    from trainables.data import digits

    fonts = digits.list_digit_fonts()[:3]
    monkeypatch.setenv("ASG_CACHE", "off")
    digits._rendered.cache_clear()
    fresh = digits.render_digits(30, fonts, seed=5)
    monkeypatch.setenv("ASG_CACHE", str(tmp_path))
    digits._rendered.cache_clear()
    first = digits.render_digits(30, fonts, seed=5)  # drawn, then written
    (written,) = tmp_path.glob("digits-*.npz")
    digits._rendered.cache_clear()
    second = digits.render_digits(30, fonts, seed=5)  # read back
    for a, b in ((fresh, first), (fresh, second)):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    written.write_bytes(b"cut short by a kill")
    digits._rendered.cache_clear()
    again = digits.render_digits(30, fonts, seed=5)
    assert np.array_equal(again[0], fresh[0])
    digits._rendered.cache_clear()
    assert not list(tmp_path.glob("*.tmp"))
