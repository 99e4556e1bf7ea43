"""The fast device path and ASG's VisDA protocol, checked on the CPU: bf16 autocast,
channels_last, one host sync per window, ASG's two-layer head and transforms, the image cache."""

import pytest
import torch

from trainables.config import asg_departures, preset
from trainables.finetune import FinetuneRun, loader_workers


@pytest.fixture(scope="module")
def visda_tree(tmp_path_factory):
    from trainables.data.image_list import make_image_tree

    return make_image_tree(tmp_path_factory.mktemp("tree"), n_per_class=3, size=20, num_classes=5)


def test_bf16_autocast_and_channels_last_train_on_the_cpu():
    run = FinetuneRun(preset("tiny", amp="bf16", channels_last="on"))
    assert run.precision.autocast_dtype is torch.bfloat16 and run.precision.channels_last
    conv = next(p for p in run.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    run.reset(0)
    before = [p.detach().clone() for p in run.model.parameters()]
    stats = run.train_window([1.0] * run.num_groups)
    assert not stats.diverged and stats.task_loss > 0 and stats.guidance_loss >= 0
    # Master weights stay float32 and move; evaluation runs under the same autocast.
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=True))
    assert 0.0 <= run.evaluate("proxy").mean_class <= 1.0


def test_auto_precision_is_plain_float32_on_the_cpu():
    run = FinetuneRun(preset("tiny"))
    assert run.precision.autocast_dtype is None and not run.precision.channels_last


def test_a_window_reads_the_device_once(monkeypatch):
    """Losses are summed on the device and read once at the window's end, not per iteration."""
    run = FinetuneRun(preset("tiny", iters_per_window=4))
    run.reset(0)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            reads.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    stats = run.train_window([1.0] * run.num_groups)
    monkeypatch.undo()
    assert stats.iters == 4
    assert reads == ["tolist"], reads


def test_non_finite_loss_still_flags_the_window():
    run = FinetuneRun(preset("tiny", guidance_weight=0.0, base_lr=1e12))
    run.reset(0)
    stats = run.train_window([1.0] * run.num_groups)
    for _ in range(3):
        if stats.diverged:
            break
        stats = run.train_window([1.0] * run.num_groups)
    assert stats.diverged and stats.task_loss != stats.task_loss  # nan


def test_asg_head_has_two_layers_in_the_head_group():
    run = FinetuneRun(preset("tiny", head_hidden=32))
    head = run.model.task_head
    assert [type(m).__name__ for m in head.layers] == ["Linear", "ReLU", "Linear"]
    assert head.weight is head.layers[2].weight and head.out_features == 10
    groups = run.model.parameter_groups()
    assert {id(p) for p in groups["head"]} == {id(p) for p in head.parameters()}
    run.reset(0)
    first = head.layers[0].weight.detach().clone()
    run.reset(1)  # a new seed draws the whole head anew
    assert not torch.equal(first, head.layers[0].weight)


def test_visda_preset_is_asg_recipe_and_departures_are_named():
    cfg = preset("visda", data_root="/x")
    assert asg_departures(cfg) == []
    changed = asg_departures(cfg.replace(visda_transform="augment", head_hidden=0))
    assert changed == ["head_hidden=0 (ASG: 512)", "visda_transform='augment' (ASG: 'asg')"]
    assert asg_departures(preset("embedded")) == []  # digits: no VisDA recipe to depart from


def test_asg_transform_is_deterministic_and_the_cache_returns_the_same_tensors(tmp_path):
    from trainables.data.image_list import make_image_tree
    from trainables.data.splits import build_splits

    visda_tree = make_image_tree(tmp_path / "tree", n_per_class=3, size=20, num_classes=5)
    cfg = preset("tiny", dataset="visda", data_root=str(visda_tree), fewshot_per_class=1)
    cfg = cfg.replace(image_size=16)
    plain = build_splits(cfg)
    cached = build_splits(cfg.replace(image_cache=str(tmp_path / "cache")))
    assert plain.train.cache is None and cached.train.cache is not None
    for i in range(len(plain.train)):
        a, b = plain.train[i][0], cached.train[i][0]
        assert torch.equal(a, plain.train[i][0])  # no augmentation: the same tensor every time
        assert torch.allclose(a, b, atol=1e-6)  # first read through the cache
        assert torch.allclose(a, cached.train[i][0], atol=1e-6)  # then from the cache file
    files = list((tmp_path / "cache").glob("*.npy"))
    assert len(files) == len(plain.train)
    # The cached copy is what is read: the source image can go.
    expected = plain.train[0][0]
    cached.train.paths[0].unlink()
    assert torch.allclose(cached.train[0][0], expected, atol=1e-6)


def test_augmenting_transform_is_never_cached(visda_tree, tmp_path):
    from trainables.data.splits import build_splits

    cfg = preset("tiny", dataset="visda", data_root=str(visda_tree), fewshot_per_class=1)
    splits = build_splits(
        cfg.replace(visda_transform="augment", image_cache=str(tmp_path / "cache"))
    )
    assert splits.train.cache is None


def test_cache_that_does_not_fit_is_off_with_one_line(visda_tree, tmp_path, capsys, monkeypatch):
    from trainables.data.image_list import ImageCache
    from trainables.data.splits import build_splits

    fits, why = ImageCache.fits(tmp_path, num_images=10**12, image_size=224)
    assert not fits and "GB free" in why
    monkeypatch.setattr(ImageCache, "fits", staticmethod(lambda *a: (False, "needs 9 GB")))
    cfg = preset("tiny", dataset="visda", data_root=str(visda_tree), fewshot_per_class=1)
    splits = build_splits(cfg.replace(image_cache=str(tmp_path / "c")))
    assert splits.train.cache is None
    assert capsys.readouterr().out.strip() == "[asg] image cache off: needs 9 GB"


def test_loader_workers_auto_follows_the_threads_the_run_may_use(monkeypatch):
    assert loader_workers(preset("tiny", num_workers=3)) == 3
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert loader_workers(preset("tiny", num_workers=-1)) == 3
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert loader_workers(preset("tiny", num_workers=-1)) == 0
