"""VisDA-17-style image lists or class folders: parsing, validation, datasets, transforms and a
tiny test tree.

Layout (any synthetic/real pair in this layout works)::

    <root>/train/image_list.txt        synthetic renders, one "relative/path label" per line
    <root>/validation/image_list.txt   real images, same format

Paths are relative to the folder holding the ``image_list.txt``; each line is split on its last
whitespace so paths may contain spaces; blank lines are ignored.

A split folder without an ``image_list.txt`` is read as torchvision's ``ImageFolder`` reads one:
``<split>/<class>/**/<image>``, one folder per class, images by extension (``IMG_EXTENSIONS``).
Class indices are the positions of the *training* class folders' names in sorted order, and the
validation split's class folders must be among them. Both layouts give the same
:class:`ImageList` of (absolute path, label), so everything downstream is shared.

Every problem with the input is reported as a :class:`~trainables.errors.DataError` with a
one-line message naming the file or folder (and the line of the list, where there is one).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from trainables.errors import ConfigError, DataError
from trainables.imagenet import IMAGENET_MEAN, IMAGENET_STD

VISDA_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bus",
    "car",
    "horse",
    "knife",
    "motorcycle",
    "person",
    "plant",
    "skateboard",
    "train",
    "truck",
)

LIST_NAME = "image_list.txt"
TRAIN_DIR = "train"
VAL_DIR = "validation"

_LABEL_RE = re.compile(r"[+-]?[0-9]+")


def _layout_hint(root: Path) -> str:
    return (
        f"expected {root / TRAIN_DIR / LIST_NAME} (synthetic) and "
        f"{root / VAL_DIR / LIST_NAME} (real), each line '<relative/path> <label>', "
        f"or instead of a list one folder of images per class, e.g. {root / TRAIN_DIR}/<class>/"
    )


def _one_line(text: object) -> str:
    """Collapse whitespace (including newlines) so an error message stays on one line."""
    return " ".join(str(text).split())


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")


def class_name(label: int, num_classes: int) -> str:
    """Human-readable name of class ``label``: the VisDA name when there are 12 classes."""
    if num_classes == len(VISDA_CLASSES) and 0 <= label < num_classes:
        return VISDA_CLASSES[label]
    return f"class_{label:02d}"


@dataclass(frozen=True)
class ImageList:
    """One split's images: absolute paths and their integer labels, in list (or sorted folder)
    order, and the name of each class index."""

    source: Path
    """The ``image_list.txt`` read, or the split folder whose class folders were read."""
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    """Class names by label: the class folders' names, else :func:`class_name`'s."""

    def __len__(self) -> int:
        return len(self.paths)


def read_image_list(list_file: Path, num_classes: int) -> ImageList:
    """Parse and check ``list_file``; every listed image must exist and be non-empty.

    Raises:
        DataError: the list is missing/unreadable/empty, or a line has no label, a non-integer
            label, a label outside ``[0, num_classes)``, or names a missing or 0-byte file.
    """
    _check_num_classes(num_classes)
    list_file = Path(list_file).absolute()
    if not list_file.is_file():
        what = "is not a file" if list_file.exists() else "not found"
        raise DataError(f"{list_file}: image list {what}; {_layout_hint(list_file.parent.parent)}")
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{list_file}: image list is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{list_file}: cannot read image list ({exc.strerror})") from None

    base = list_file.parent
    paths: list[Path] = []
    labels: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{list_file}:{lineno}"
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{where}: expected '<path> <label>', got {line!r} (no label)")
        rel, label_text = parts
        if not _LABEL_RE.fullmatch(label_text):
            raise DataError(f"{where}: label {label_text!r} is not an integer")
        label = int(label_text)
        if not 0 <= label < num_classes:
            raise DataError(f"{where}: label {label} is outside [0, {num_classes})")
        path = base / rel
        _check_image_file(path, where)
        paths.append(path)
        labels.append(label)

    if not paths:
        raise DataError(f"{list_file}: image list has no entries")
    classes = tuple(class_name(k, num_classes) for k in range(num_classes))
    return ImageList(source=list_file, paths=tuple(paths), labels=tuple(labels), classes=classes)


def _check_image_file(path: Path, where: object) -> None:
    """DataError, starting with ``where``, unless ``path`` is a non-empty regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{where}: image file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot access image file {path} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{where}: image path {path} is not a regular file")
    if st.st_size == 0:
        raise DataError(f"{where}: image file {path} is empty (0 bytes)")


def read_class_folders(
    folder: Path, num_classes: int = 0, train_classes: Sequence[str] | None = None
) -> ImageList:
    """Read split ``folder`` laid out for torchvision's ``ImageFolder``: ``<class>/**/<image>``.

    Training split (``train_classes`` None): the sorted class folder names are the classes,
    labelled 0..N-1; ``num_classes`` must be 0 or N, and every class folder must hold an image.
    Validation split: labels are positions in ``train_classes``; every class folder must be one
    of them, but may be empty (that class is then just not scored).

    Raises:
        DataError: no class folders, a class count other than ``num_classes``, an empty training
            class folder, a validation class not in training, no images at all, or an image
            that is missing (broken link), not a regular file or 0 bytes.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    folder = Path(folder).absolute()
    try:
        found, class_to_idx = find_classes(folder)
    except FileNotFoundError:  # torchvision's "Couldn't find any class folder"
        raise DataError(
            f"{folder}: neither {LIST_NAME} nor class folders found; expected {folder / LIST_NAME}"
            f" ('<relative/path> <label>' per line) or one folder of images per class, "
            f"{folder}/<class>/<image>"
        ) from None
    except OSError as exc:
        raise DataError(f"{folder}: cannot read folder ({exc.strerror})") from None
    extensions = ", ".join(IMG_EXTENSIONS)
    if train_classes is None:
        if num_classes not in (0, len(found)):
            raise DataError(
                f"{folder}: {len(found)} class folders, but --num-classes is {num_classes} "
                "(0: one class per folder)"
            )
    else:
        train_dir = folder.parent / TRAIN_DIR
        known = set(train_classes)
        extra = [name for name in found if name not in known]
        if extra:
            names = ", ".join(train_classes[:12]) + (", ..." if len(train_classes) > 12 else "")
            raise DataError(
                f"{folder / extra[0]}: class folder {extra[0]!r} is not one of the "
                f"{len(train_classes)} training classes of {train_dir} ({names})"
            )
        class_to_idx = {name: k for k, name in enumerate(train_classes)}
    items = make_dataset(folder, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    classes = tuple(class_to_idx)
    for path, label in items:
        _check_image_file(Path(path), folder / classes[label])

    if train_classes is None:
        present = {label for _, label in items}
        empty = [k for k in range(len(classes)) if k not in present]
        if empty:
            k, more = empty[0], ", ".join(str(folder / classes[j]) for j in empty[1:])
            raise DataError(
                f"{folder / classes[k]}: no training images for class {k} ({classes[k]})"
                + (f"; also without images: {more}" if more else "")
                + f"; image files end in {extensions}"
            )
    elif not items:
        raise DataError(
            f"{folder}: its class folders hold no images (files ending in {extensions})"
        )
    return ImageList(
        source=folder,
        paths=tuple(Path(path) for path, _ in items),
        labels=tuple(label for _, label in items),
        classes=classes,
    )


def _load_rgb(path: Path) -> Image.Image:
    """Open and fully decode ``path`` as RGB; any failure becomes a one-line DataError."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
        raise DataError(f"{path}: cannot read image ({_one_line(exc)})") from exc


class ImageListDataset(Dataset):
    """Map-style dataset over image files; items are ``(transform(rgb_image), label)``.

    ``labels`` is kept as a ``torch.LongTensor`` (e.g. for class-balanced subsetting).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        transform: Callable | None,
        cache: ImageCache | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"got {len(paths)} paths but {len(labels)} labels")
        self.paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        self.labels: torch.Tensor = torch.as_tensor(list(labels), dtype=torch.long)
        self.transform = transform
        self.cache = cache
        """Where decoded images are kept; then `transform` gets the cached, resized image."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[index]
        img = _load_rgb(path) if self.cache is None else self.cache.load(path)
        out = self.transform(img) if self.transform is not None else img
        return out, int(self.labels[index])


def _verify_one(path: Path) -> None:
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:
        raise DataError(f"{path}: cannot read image ({_one_line(exc)})") from exc
    _load_rgb(path)  # verify() does not decode pixel data; a full decode catches truncation


def verify_images(
    dataset: ImageListDataset | ImageList | Sequence[Path],
    max_images: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Decode images of ``dataset`` (or a sequence of paths) up front; raise DataError naming
    the first unreadable one in list order.

    With ``max_images`` only that many images, spread evenly over the list, are checked.
    ``workers`` threads decode in parallel (PIL releases the GIL while decoding);
    ``progress(done, total)`` is called every 1000 images. Returns the number checked.
    """
    paths = getattr(dataset, "paths", dataset)
    n = len(paths)
    if max_images is not None:
        if max_images < 0:
            raise ConfigError(f"max_images must be >= 0, got {max_images}")
        if max_images < n:
            paths = [paths[i * n // max_images] for i in range(max_images)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        try:
            for done, _ in enumerate(pool.map(_verify_one, paths), start=1):
                if progress is not None and (done % 1000 == 0 or done == len(paths)):
                    progress(done, len(paths))
        except DataError:
            pool.shutdown(wait=False, cancel_futures=True)  # report now, not after the rest
            raise
    return len(paths)


def visda_transforms(
    image_size: int, train: bool, kind: str = "asg", cached: bool = False
) -> Callable:
    """ImageNet-normalised transforms from a PIL image to a float tensor (3, size, size).

    ``kind='asg'`` is ASG's recipe for training and evaluation alike: resize the short side to
    ``image_size``, centre crop, no augmentation (see :func:`asg_prepare`, the deterministic
    part that :class:`ImageCache` stores; with ``cached`` the images come resized from it and
    only the tensor conversion is left). ``kind='augment'`` is a departure: random resized
    crop and flip in training; resize to 256/224 of the size and centre crop at evaluation.
    """
    from torchvision import transforms as T

    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
    finish = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if kind == "asg":
        return T.Compose(finish if cached else [asg_prepare(image_size), *finish])
    if train:
        return T.Compose(
            [T.RandomResizedCrop(image_size, scale=(0.5, 1.0)), T.RandomHorizontalFlip(), *finish]
        )
    return T.Compose([T.Resize(int(image_size * 256 / 224)), T.CenterCrop(image_size), *finish])


def asg_prepare(image_size: int) -> Callable:
    """PIL image -> PIL image: short side resized to ``image_size``, then centre-cropped."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size), T.CenterCrop(image_size)])


class ImageCache:
    """Decoded, resized images as uint8 ``.npy`` files in a local folder, keyed by path and
    size; written atomically, so DataLoader workers and runs on one node share it safely."""

    def __init__(self, folder: Path, image_size: int) -> None:
        self.folder, self.image_size = Path(folder), image_size
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prepare = asg_prepare(image_size)

    def file_for(self, path: Path) -> Path:
        key = hashlib.sha1(f"{Path(path).absolute()}|{self.image_size}".encode()).hexdigest()
        return self.folder / f"{key}.npy"

    def load(self, path: Path) -> Image.Image:
        file = self.file_for(path)
        try:
            return Image.fromarray(np.load(file))
        except (OSError, ValueError):  # absent, or a partial file from a killed writer
            pass
        img = self._prepare(_load_rgb(path))
        tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, np.asarray(img, dtype=np.uint8))
        os.replace(tmp, file)
        return img

    @staticmethod
    def fits(folder: Path, num_images: int, image_size: int) -> tuple[bool, str]:
        """Whether ``num_images`` cached images fit in the free space at ``folder`` (with 20%
        to spare), and a one-line reason when they do not."""
        need = num_images * (image_size * image_size * 3 + 128) * 1.2
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if need <= free:
            return True, ""
        return False, f"needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free at {folder}"


def infer_num_classes(list_file: Path) -> int:
    """Largest label in ``list_file`` + 1 (1 if it has no parsable label; the full checks of
    :func:`read_image_list` report what is wrong with the file)."""
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return 1
    labels = [
        int(parts[1])
        for parts in (line.strip().rsplit(maxsplit=1) for line in text.splitlines())
        if len(parts) == 2 and _LABEL_RE.fullmatch(parts[1]) and int(parts[1]) >= 0
    ]
    return max(labels, default=0) + 1


def load_visda_lists(root: Path, num_classes: int = 12) -> tuple[ImageList, ImageList]:
    """Read and check ``(synthetic train split, real validation split)`` under ``root``.

    Each split folder is read from its ``image_list.txt`` if it has one (:func:`read_image_list`),
    else from its class folders (:func:`read_class_folders`, labelled by the training split's
    classes). Every class ``0..num_classes-1`` must have at least one training image.
    ``num_classes=0`` takes the class count from the training split: its largest label + 1, or
    its number of class folders.
    """
    if num_classes != 0:  # 0: from the training split
        _check_num_classes(num_classes)
    root = Path(root).absolute()
    if not root.is_dir():
        what = "dataset path is not a folder" if root.exists() else "dataset folder does not exist"
        raise DataError(f"{root}: {what}; {_layout_hint(root)}")
    for sub in (TRAIN_DIR, VAL_DIR):
        if not (root / sub).is_dir():
            raise DataError(f"{root / sub}: folder not found; {_layout_hint(root)}")

    train = _read_split(root / TRAIN_DIR, num_classes, None)
    num_classes = len(train.classes)
    val = _read_split(root / VAL_DIR, num_classes, train.classes)

    present = set(train.labels)
    missing = [k for k in range(num_classes) if k not in present]
    if missing:
        names = ", ".join(f"{k} ({train.classes[k]})" for k in missing)
        plural = "es" if len(missing) > 1 else ""
        raise DataError(f"{train.source}: no training images for class{plural} {names}")
    return train, replace(val, classes=train.classes)


def _read_split(folder: Path, num_classes: int, train_classes: tuple[str, ...] | None) -> ImageList:
    """``folder``'s image list if it has one (even a broken one), else its class folders."""
    list_file = folder / LIST_NAME
    if not (list_file.exists() or list_file.is_symlink()):
        return read_class_folders(folder, num_classes, train_classes)
    if num_classes == 0:
        num_classes = infer_num_classes(list_file)
    return read_image_list(list_file, num_classes)


def _class_colour(label: int, num_classes: int) -> np.ndarray:
    """A distinct, saturated RGB colour per class (hues evenly spaced)."""
    h = 6.0 * label / num_classes
    x = 1.0 - abs(h % 2.0 - 1.0)
    sector = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h) % 6]
    value = 0.9 if label % 2 == 0 else 0.6  # alternate brightness so neighbours differ more
    return np.array(sector, dtype=np.float64) * 255.0 * value


def make_image_tree(
    root: Path,
    n_per_class: int,
    num_classes: int = 12,
    size: int = 32,
    seed: int = 0,
    layout: str = "list",
) -> Path:
    """Write a tiny VisDA-layout tree of generated images and return ``root``.

    Each class has its own colour; ``train/`` holds clean PNG "renders" (flat colour plus a
    lighter square), ``validation/`` holds noisier JPEG "photos" of the same classes. Images
    go to ``<split>/<class name>/<index>.<ext>``. ``layout='list'`` also (over)writes each
    split's image list; ``layout='folders'`` writes none, leaving the class folders to be read.
    """
    _check_num_classes(num_classes)
    if layout not in ("list", "folders"):
        raise ConfigError(f"layout must be 'list' or 'folders', got {layout!r}")
    if n_per_class < 1:
        raise ConfigError(f"n_per_class must be >= 1, got {n_per_class}")
    if size < 8:
        raise ConfigError(f"size must be >= 8, got {size}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, ext, noise in ((TRAIN_DIR, "png", 6.0), (VAL_DIR, "jpg", 25.0)):
        lines = []
        for label in range(num_classes):
            name = class_name(label, num_classes)
            (root / split / name).mkdir(parents=True, exist_ok=True)
            colour = _class_colour(label, num_classes)
            for i in range(n_per_class):
                pixels = np.broadcast_to(colour, (size, size, 3)).copy()
                side = int(rng.integers(size // 4, size // 2 + 1))
                y, x = rng.integers(0, size - side + 1, size=2)
                pixels[y : y + side, x : x + side] = 0.5 * pixels[y : y + side, x : x + side] + 120
                pixels += rng.normal(0.0, noise, size=pixels.shape)
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
                rel = f"{name}/{i:04d}.{ext}"
                image.save(root / split / rel)
                lines.append(f"{rel} {label}\n")
        if layout == "list":
            (root / split / LIST_NAME).write_text("".join(lines), encoding="utf-8")
    return root
