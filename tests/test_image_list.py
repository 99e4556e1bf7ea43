"""Tests for trainables.data.image_list: parsing image lists and class folders, validation
errors, datasets and transforms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainables.config import preset
from trainables.data.image_list import (
    VISDA_CLASSES,
    ImageList,
    ImageListDataset,
    load_visda_lists,
    make_image_tree,
    read_class_folders,
    read_image_list,
    verify_images,
    visda_transforms,
)
from trainables.data.splits import build_splits
from trainables.errors import ConfigError, DataError

N_PER_CLASS = 2


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_image_tree(tmp_path / "visda", n_per_class=N_PER_CLASS, size=32, seed=1)


def _train_list(root: Path) -> Path:
    return root / "train" / "image_list.txt"


def _write_lines(list_file: Path, lines: list[str]) -> None:
    list_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _first_line(list_file: Path) -> str:
    return list_file.read_text(encoding="utf-8").splitlines()[0]


def _one_line_message(exc_info: pytest.ExceptionInfo[DataError]) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


# --- good input --------------------------------------------------------------------------------


def test_visda_classes() -> None:
    assert len(VISDA_CLASSES) == 12
    assert VISDA_CLASSES[0] == "aeroplane" and VISDA_CLASSES[-1] == "truck"


def test_good_tree_loads(tree: Path) -> None:
    train, val = load_visda_lists(tree)
    assert isinstance(train, ImageList) and isinstance(val, ImageList)
    assert train.source == _train_list(tree).absolute()
    assert train.classes == val.classes == VISDA_CLASSES
    assert len(train.paths) == len(train.labels) == 12 * N_PER_CLASS
    assert len(val.paths) == 12 * N_PER_CLASS
    assert sorted(set(train.labels)) == list(range(12))
    assert all(p.is_absolute() and p.is_file() for p in train.paths + val.paths)
    assert all(p.suffix == ".png" for p in train.paths)
    assert all(p.suffix == ".jpg" for p in val.paths)
    # each image sits in its class folder
    for path, label in zip(train.paths, train.labels, strict=True):
        assert path.parent.name == VISDA_CLASSES[label]


def test_datasets_shapes_and_labels(tree: Path) -> None:
    train, val = load_visda_lists(tree)
    ds_train = ImageListDataset(train.paths, train.labels, visda_transforms(24, train=True))
    ds_val = ImageListDataset(val.paths, val.labels, visda_transforms(24, train=False))
    assert len(ds_train) == len(train.paths)
    assert isinstance(ds_train.labels, torch.Tensor) and ds_train.labels.dtype == torch.long
    assert ds_train.labels.tolist() == list(train.labels)
    for ds, lst in ((ds_train, train), (ds_val, val)):
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert isinstance(x, torch.Tensor)
            assert x.shape == (3, 24, 24) and x.dtype == torch.float32
            assert isinstance(y, int) and y == lst.labels[i]
    loader = torch.utils.data.DataLoader(ds_val, batch_size=5)
    xb, yb = next(iter(loader))
    assert xb.shape == (5, 3, 24, 24) and yb.tolist() == list(val.labels[:5])


def test_eval_transform_is_normalised_and_deterministic(tree: Path) -> None:
    train, _ = load_visda_lists(tree)
    ds = ImageListDataset(train.paths, train.labels, visda_transforms(32, train=False))
    a, _ = ds[0]
    b, _ = ds[0]
    assert torch.equal(a, b)
    assert a.min() < 0  # ImageNet normalisation shifts values below zero somewhere


def test_dataset_without_transform_returns_rgb_image(tree: Path) -> None:
    train, _ = load_visda_lists(tree)
    img, label = ImageListDataset(train.paths, train.labels, None)[3]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (32, 32)
    assert label == train.labels[3]


def test_classes_get_distinct_colours(tree: Path) -> None:
    train, _ = load_visda_lists(tree)
    ds = ImageListDataset(train.paths, train.labels, visda_transforms(32, train=False))
    means = {}
    for i in range(len(ds)):
        x, y = ds[i]
        means.setdefault(y, x.mean(dim=(1, 2)))
    cols = torch.stack([means[k] for k in range(12)])
    dists = torch.cdist(cols, cols) + torch.eye(12) * 1e9
    assert dists.min() > 0.1


def test_make_image_tree_is_deterministic(tmp_path: Path) -> None:
    a = make_image_tree(tmp_path / "a", n_per_class=1, num_classes=3, size=16, seed=7)
    b = make_image_tree(tmp_path / "b", n_per_class=1, num_classes=3, size=16, seed=7)
    for rel in ("train/image_list.txt", "train/class_00/0000.png", "validation/class_02/0000.jpg"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_custom_num_classes(tmp_path: Path) -> None:
    root = make_image_tree(tmp_path / "r", n_per_class=1, num_classes=3, size=16)
    train, val = load_visda_lists(root, num_classes=3)
    assert train.labels == (0, 1, 2) and val.labels == (0, 1, 2)
    with pytest.raises(DataError, match=r"image_list\.txt:3: label 2 is outside \[0, 2\)"):
        load_visda_lists(root, num_classes=2)


def test_paths_with_spaces_and_blank_lines(tree: Path) -> None:
    src = tree / "train" / "car" / "0000.png"
    spaced = tree / "train" / "my car" / "img 1.png"
    spaced.parent.mkdir()
    shutil.copy(src, spaced)
    list_file = tree / "train" / "extra.txt"
    list_file.write_text("\n  \nmy car/img 1.png   3\r\n\ncar/0000.png\t3\n", encoding="utf-8")
    lst = read_image_list(list_file, 12)
    assert lst.paths == (spaced.absolute(), src.absolute())
    assert lst.labels == (3, 3)


def test_verify_images_good(tree: Path) -> None:
    train, val = load_visda_lists(tree)
    ds = ImageListDataset(val.paths, val.labels, None)
    assert verify_images(ds) == len(val.paths)
    assert verify_images(train, max_images=5) == 5
    assert verify_images(ds, max_images=0) == 0
    assert verify_images(ds, max_images=10_000) == len(val.paths)
    seen: list[tuple[int, int]] = []
    assert verify_images(list(train.paths), workers=4, progress=lambda *a: seen.append(a)) == len(
        train.paths
    )
    assert seen[-1] == (len(train.paths), len(train.paths))  # the last call reports completion


# --- bad folders -------------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(root)
    msg = _one_line_message(exc_info)
    assert str(root) in msg and "does not exist" in msg
    assert "train/image_list.txt" in msg and "validation/image_list.txt" in msg


def test_root_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        load_visda_lists(root)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_missing_split_folder(tree: Path, split: str) -> None:
    shutil.rmtree(tree / split)
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    msg = _one_line_message(exc_info)
    assert msg.startswith(f"{tree / split}: folder not found")
    assert "expected" in msg and "image_list.txt" in msg


@pytest.mark.parametrize("split", ["train", "validation"])
def test_split_without_list_or_class_folders(tree: Path, split: str) -> None:
    folder = tree / split
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "stray.png").write_bytes(b"x")  # loose images are not a class folder layout
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    assert _one_line_message(exc_info) == (
        f"{folder}: neither image_list.txt nor class folders found; expected "
        f"{folder / 'image_list.txt'} ('<relative/path> <label>' per line) or one folder of "
        f"images per class, {folder}/<class>/<image>"
    )


def test_dangling_image_list_link_is_reported_not_skipped(tree: Path) -> None:
    list_file = tree / "validation" / "image_list.txt"
    list_file.unlink()
    list_file.symlink_to(tree / "nowhere.txt")  # there are class folders, but a list was meant
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    assert _one_line_message(exc_info).startswith(f"{list_file}: image list not found")


def test_read_image_list_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"image_list\.txt: image list not found"):
        read_image_list(tmp_path / "image_list.txt", 12)


# --- bad lines ---------------------------------------------------------------------------------


def _break_line(tree: Path, lineno: int, new_line: str) -> Path:
    """Replace line ``lineno`` (1-based) of the train list and return the list's path."""
    list_file = _train_list(tree)
    lines = list_file.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = new_line
    _write_lines(list_file, lines)
    return list_file


def _assert_line_error(tree: Path, list_file: Path, lineno: int, *fragments: str) -> str:
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    msg = _one_line_message(exc_info)
    assert msg.startswith(f"{list_file.absolute()}:{lineno}: ")
    for fragment in fragments:
        assert fragment in msg
    return msg


def test_line_without_label(tree: Path) -> None:
    list_file = _break_line(tree, 3, "car/0000.png")
    _assert_line_error(tree, list_file, 3, "no label", "car/0000.png")


def test_non_integer_label(tree: Path) -> None:
    path = _first_line(_train_list(tree)).rsplit(maxsplit=1)[0]
    list_file = _break_line(tree, 2, f"{path} car")
    _assert_line_error(tree, list_file, 2, "'car'", "not an integer")


def test_float_label(tree: Path) -> None:
    path = _first_line(_train_list(tree)).rsplit(maxsplit=1)[0]
    list_file = _break_line(tree, 4, f"{path} 1.0")
    _assert_line_error(tree, list_file, 4, "'1.0'", "not an integer")


@pytest.mark.parametrize("label", [12, 99, -1])
def test_label_out_of_range(tree: Path, label: int) -> None:
    path = _first_line(_train_list(tree)).rsplit(maxsplit=1)[0]
    list_file = _break_line(tree, 5, f"{path} {label}")
    _assert_line_error(tree, list_file, 5, f"label {label} is outside [0, 12)")


def test_missing_image_path(tree: Path) -> None:
    list_file = _break_line(tree, 6, "car/does_not_exist.png 3")
    _assert_line_error(tree, list_file, 6, "does_not_exist.png", "does not exist")


def test_missing_image_in_validation_list(tree: Path) -> None:
    (tree / "validation" / "bus" / "0001.jpg").unlink()
    list_file = tree / "validation" / "image_list.txt"
    lineno = 2 * N_PER_CLASS + 2  # bus is class 2, second image
    _assert_line_error(tree, list_file, lineno, "bus/0001.jpg", "does not exist")


def test_empty_image_file_rejected_at_construction(tree: Path) -> None:
    (tree / "train" / "horse" / "0000.png").write_bytes(b"")
    list_file = _train_list(tree)
    lineno = 4 * N_PER_CLASS + 1  # horse is class 4, first image
    _assert_line_error(tree, list_file, lineno, "horse/0000.png", "empty (0 bytes)")


def test_directory_as_image_path(tree: Path) -> None:
    list_file = _break_line(tree, 1, "car 0")
    _assert_line_error(tree, list_file, 1, "not a regular file")


def test_empty_image_list(tree: Path) -> None:
    list_file = tree / "validation" / "image_list.txt"
    list_file.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    msg = _one_line_message(exc_info)
    assert msg == f"{list_file.absolute()}: image list has no entries"


def test_class_without_training_images(tree: Path) -> None:
    list_file = _train_list(tree)
    lines = list_file.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if not ln.endswith(" 5") and not ln.endswith(" 9")]
    assert len(kept) == len(lines) - 2 * N_PER_CLASS
    _write_lines(list_file, kept)
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(tree)
    msg = _one_line_message(exc_info)
    assert msg.startswith(f"{list_file.absolute()}: no training images for classes")
    assert "5 (knife)" in msg and "9 (skateboard)" in msg
    assert "4 (horse)" not in msg


def test_class_missing_only_in_validation_is_fine(tree: Path) -> None:
    list_file = tree / "validation" / "image_list.txt"
    lines = list_file.read_text(encoding="utf-8").splitlines()
    _write_lines(list_file, [ln for ln in lines if not ln.endswith(" 7")])
    train, val = load_visda_lists(tree)
    assert 7 not in val.labels and 7 in train.labels


# --- class folders (torchvision's ImageFolder layout) -----------------------------------------


def _folder_tree(root: Path, num_classes: int = 3, n_per_class: int = N_PER_CLASS) -> Path:
    return make_image_tree(
        root, n_per_class=n_per_class, num_classes=num_classes, size=16, seed=1, layout="folders"
    )


def _animal_tree(root: Path) -> Path:
    """A 3-class folder tree whose class names sort in another order than they were made."""
    _folder_tree(root)
    for split in ("train", "validation"):
        for old, new in (("class_00", "zebra"), ("class_01", "ant"), ("class_02", "moth")):
            (root / split / old).rename(root / split / new)
    return root


def _relative_items(root: Path, data: ImageList | ImageListDataset) -> list[tuple[str, int]]:
    """``data``'s (path relative to ``root``, label) items, in order."""
    return [
        (p.relative_to(root).as_posix(), int(y))
        for p, y in zip(data.paths, data.labels, strict=True)
    ]


def test_make_image_tree_folders_layout_writes_no_list(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    assert not list(root.rglob("image_list.txt"))
    assert sorted(p.name for p in (root / "train").iterdir()) == [
        "class_00",
        "class_01",
        "class_02",
    ]
    with pytest.raises(ConfigError, match="layout"):
        make_image_tree(tmp_path / "g", n_per_class=1, layout="csv")


@pytest.mark.parametrize("num_classes", [0, 3])
def test_class_folders_load_with_sorted_folder_names_as_classes(
    tmp_path: Path, num_classes: int
) -> None:
    root = _animal_tree(tmp_path / "f")
    train, val = load_visda_lists(root, num_classes=num_classes)
    assert train.source == (root / "train").absolute() and val.source == root / "validation"
    assert train.classes == val.classes == ("ant", "moth", "zebra")
    assert train.labels == (0, 0, 1, 1, 2, 2) and val.labels == train.labels
    for lst in (train, val):
        assert all(p.is_absolute() and p.is_file() for p in lst.paths)
        for path, label in zip(lst.paths, lst.labels, strict=True):
            assert path.parent.name == lst.classes[label]
    cfg = preset("tiny", dataset="visda", data_root=str(root), num_classes=num_classes)
    assert build_splits(cfg).classes == ("ant", "moth", "zebra")  # what runs report


def test_same_images_as_list_and_as_folders_give_the_same_items(tmp_path: Path) -> None:
    as_list = make_image_tree(tmp_path / "list", n_per_class=2, size=8, seed=3)
    as_folders = make_image_tree(tmp_path / "folders", n_per_class=2, size=8, seed=3)
    for split in ("train", "validation"):
        (as_folders / split / "image_list.txt").unlink()
    lists, folders = load_visda_lists(as_list), load_visda_lists(as_folders)
    for a, b in zip(lists, folders, strict=True):
        assert b.source.name in ("train", "validation")  # really read from the folders
        assert _relative_items(as_list, a) == _relative_items(as_folders, b)
        assert a.classes == b.classes == VISDA_CLASSES
    # and downstream: the datasets of every split, and the class names
    seen = []
    for root in (as_list, as_folders):
        splits = build_splits(preset("tiny", dataset="visda", data_root=str(root)))
        datasets = (splits.train, *splits.proxies.values(), splits.test)
        seen.append((splits.classes, [_relative_items(root, d) for d in datasets]))
    assert seen[0] == seen[1] and seen[0][0] == VISDA_CLASSES


def test_image_list_takes_precedence_over_class_folders(tree: Path) -> None:
    extra = tree / "train" / "zebra" / "0000.png"  # a 13th class folder, not in the list
    extra.parent.mkdir()
    shutil.copy(tree / "train" / "car" / "0000.png", extra)
    list_file = _train_list(tree)
    lines = list_file.read_text(encoding="utf-8").splitlines()
    _write_lines(list_file, lines[::-1])
    train, _ = load_visda_lists(tree)  # 12 classes, as the list says
    assert train.source == list_file.absolute()
    assert [f"{p} {y}" for p, y in _relative_items(tree / "train", train)] == lines[::-1]
    assert extra.absolute() not in train.paths and len(train.classes) == 12


def test_train_list_with_validation_class_folders(tree: Path) -> None:
    list_file = tree / "validation" / "image_list.txt"
    listed = read_image_list(list_file, 12)
    list_file.unlink()
    train, val = load_visda_lists(tree)
    assert train.source.name == "image_list.txt" and val.source == tree / "validation"
    assert (val.paths, val.labels) == (listed.paths, listed.labels)  # named as the list's classes


def test_class_folders_with_validation_list_keep_the_folder_names(tmp_path: Path) -> None:
    root = _animal_tree(tmp_path / "f")
    _write_lines(root / "validation" / "image_list.txt", ["zebra/0001.jpg 2", "ant/0000.jpg 0"])
    train, val = load_visda_lists(root, num_classes=0)
    assert val.source.name == "image_list.txt" and val.labels == (2, 0)
    assert train.classes == val.classes == ("ant", "moth", "zebra")


def test_empty_training_class_folder(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f", num_classes=4)
    for name in ("class_01", "class_03"):
        for image in (root / "train" / name).iterdir():
            image.unlink()
    (root / "train" / "class_01" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(root, num_classes=0)
    msg = _one_line_message(exc_info)
    assert msg.startswith(
        f"{root / 'train' / 'class_01'}: no training images for class 1 (class_01); "
        f"also without images: {root / 'train' / 'class_03'}; image files end in .jpg, "
    )


def test_empty_validation_class_folder_is_fine(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    shutil.rmtree(root / "validation" / "class_01")
    (root / "validation" / "class_01").mkdir()
    train, val = load_visda_lists(root, num_classes=0)
    assert 1 in train.labels and 1 not in val.labels and val.labels == (0, 0, 2, 2)


def test_validation_without_any_image(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    for image in (root / "validation").rglob("*.jpg"):
        image.unlink()
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(root, num_classes=0)
    msg = _one_line_message(exc_info)
    assert msg.startswith(f"{root / 'validation'}: its class folders hold no images")


def test_validation_class_missing_from_training(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    (root / "validation" / "class_01").rename(root / "validation" / "class_07")
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(root, num_classes=0)
    assert _one_line_message(exc_info) == (
        f"{root / 'validation' / 'class_07'}: class folder 'class_07' is not one of the 3 "
        f"training classes of {root / 'train'} (class_00, class_01, class_02)"
    )


def test_class_folder_count_must_match_num_classes(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    with pytest.raises(DataError) as exc_info:
        load_visda_lists(root)  # the default: VisDA-17's 12
    assert _one_line_message(exc_info) == (
        f"{root / 'train'}: 3 class folders, but --num-classes is 12 (0: one class per folder)"
    )


def test_empty_image_in_class_folder(tmp_path: Path) -> None:
    root = _folder_tree(tmp_path / "f")
    bad = root / "validation" / "class_02" / "0001.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError) as exc_info:
        read_class_folders(root / "validation", train_classes=("class_00", "class_01", "class_02"))
    assert _one_line_message(exc_info) == (f"{bad.parent}: image file {bad} is empty (0 bytes)")


def test_corrupt_image_in_class_folder_stops_the_preflight(tmp_path: Path) -> None:
    from trainables.preflight import check_inputs

    root = _folder_tree(tmp_path / "f")
    bad = root / "train" / "class_01" / "0000.png"
    bad.write_bytes(b"not a png" * 9)
    cfg = preset(
        "tiny", dataset="visda", data_root=str(root), fewshot_per_class=1, pretrained=False
    )
    with pytest.raises(DataError) as exc_info:
        check_inputs(cfg)
    assert _one_line_message(exc_info).startswith(f"{bad}: cannot read image (")


# --- corrupt images ----------------------------------------------------------------------------


def test_corrupt_image_raises_on_access_and_verify(tree: Path) -> None:
    bad = tree / "validation" / "truck" / "0000.jpg"
    bad.write_bytes(b"this is not a jpeg at all \x00\x01\x02" * 10)
    _, val = load_visda_lists(tree)  # non-empty, so it passes the cheap construction checks
    index = val.paths.index(bad.absolute())
    ds = ImageListDataset(val.paths, val.labels, visda_transforms(16, train=False))
    ds[0]  # other images still load
    with pytest.raises(DataError) as exc_info:
        ds[index]
    msg = _one_line_message(exc_info)
    assert msg.startswith(f"{bad.absolute()}: cannot read image (")
    with pytest.raises(DataError) as exc_info:
        verify_images(ds)
    assert _one_line_message(exc_info).startswith(f"{bad.absolute()}: cannot read image (")


def test_truncated_image_detected(tree: Path) -> None:
    bad = tree / "validation" / "plant" / "0001.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 9 // 10])  # headers intact, entropy-coded data cut short
    with Image.open(bad) as img:
        img.verify()  # PIL's verify() alone does not notice: only a full decode does
    _, val = load_visda_lists(tree)
    ds = ImageListDataset(val.paths, val.labels, None)
    with pytest.raises(DataError, match="cannot read image") as exc_info:
        verify_images(ds)
    assert str(bad.absolute()) in str(exc_info.value)
    with pytest.raises(DataError, match="cannot read image"):
        ds[val.paths.index(bad.absolute())]


def test_dataset_length_mismatch() -> None:
    with pytest.raises(ValueError):
        ImageListDataset([Path("a.png")], [0, 1], None)


def _make_visda_tree(capsys, *args: str | Path) -> tuple[int, str, str]:
    """experiments/make_visda_tree.py's main in this process: (exit status, stdout, stderr)."""
    from conftest import main_in_process

    from experiments import make_visda_tree

    return main_in_process(capsys, make_visda_tree.main, *args)


def test_make_visda_tree_script_writes_a_loadable_tree_and_weights(tmp_path, capsys):
    import torchvision

    code, out, err = _make_visda_tree(
        capsys, "--out", tmp_path, "--num-classes", "7", "--images-per-class", "2",
        "--image-size", "16", "--random-weights", "resnet50",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        f"tree: {tmp_path / 'tree'}",
        f"weights: {tmp_path}/resnet50-random.pth",
    ]
    train, val = load_visda_lists(tmp_path / "tree", num_classes=7)
    assert len(train) == len(val) == 14
    state = torch.load(tmp_path / "resnet50-random.pth", weights_only=True)
    torchvision.models.resnet50(weights=None).load_state_dict(state)  # strict: every key


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--image-size", "4"], "--image-size must be >= 8"),
        (["--random-weights", "vgg16"], "--random-weights"),
        (["--out", "/dev/null"], "--out /dev/null: cannot write"),
    ],
)
def test_make_visda_tree_script_bad_input_is_one_line(args, needle, tmp_path, capsys):
    flags = ["--out", tmp_path, *args] if "--out" not in args else args
    code, _, err = _make_visda_tree(capsys, *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
