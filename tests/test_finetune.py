"""The fine-tuning run: splits kept apart, frozen teacher, guidance, resume, VisDA layout."""

import numpy as np
import pytest
import torch

from trainables.config import preset
from trainables.data.splits import build_splits
from trainables.finetune import FinetuneRun


@pytest.fixture(scope="module")
def tiny_run():
    return FinetuneRun(preset("tiny"))


def _as_set(ds):
    return {tuple(x.flatten()[::7].tolist()) for x, _ in ds}


def test_real_fewshot_proxy_is_disjoint_from_test_and_test_is_shared():
    cfg = preset("tiny", max_test=0)
    few = build_splits(cfg.replace(proxy="real_fewshot"))
    syn = build_splits(cfg)
    assert len(few.proxy_val) == 10 * cfg.fewshot_per_class
    assert not (_as_set(few.proxy_val) & _as_set(few.test))
    # Every proxy choice is scored on the same real test images.
    assert torch.equal(few.test.tensors[1], syn.test.tensors[1])
    assert len(syn.test) == 1797 - 10 * cfg.fewshot_per_class


def test_heldout_fonts_proxy_differs_from_synthetic_proxy():
    a = build_splits(preset("tiny"))
    b = build_splits(preset("tiny", proxy="heldout_fonts"))
    assert not torch.equal(a.proxy_val.tensors[0], b.proxy_val.tensors[0])


def test_teacher_is_frozen_and_unchanged_by_training(tiny_run):
    teacher = tiny_run.guidance.teacher
    assert teacher is not None and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    tiny_run.reset(0)
    stats = tiny_run.train_window([1.0] * tiny_run.num_groups)
    assert stats.guidance_loss > 0 and stats.teacher_seconds > 0
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_guidance_off_builds_no_teacher():
    run = FinetuneRun(preset("tiny", guidance_weight=0.0))
    assert run.guidance.teacher is None
    run.reset(0)
    assert run.train_window([1.0] * run.num_groups).guidance_loss == 0.0


def test_zero_multiplier_freezes_a_group(tiny_run):
    tiny_run.reset(1)
    stem = [p.clone() for p in tiny_run.model.parameter_groups()["stem"]]
    mult = [1.0] * tiny_run.num_groups
    mult[0] = 0.0
    tiny_run.train_window(mult)
    after = tiny_run.model.parameter_groups()["stem"]
    assert all(torch.equal(a, b) for a, b in zip(stem, after, strict=True))


def test_state_dict_resumes_mid_run(tiny_run):
    tiny_run.reset(3)
    tiny_run.train_window([1.0] * tiny_run.num_groups)
    state = tiny_run.state_dict()
    other = FinetuneRun(preset("tiny"), splits=tiny_run.splits)
    other.load_state_dict(state)
    assert other.iteration == tiny_run.iteration
    for a, b in zip(
        other.model.state_dict().values(), tiny_run.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    other.train_window([1.0] * other.num_groups)
    assert other.iteration == 2 * tiny_run.cfg.iters_per_window


def test_visda_layout_end_to_end(tmp_path):
    from trainables.data.image_list import make_image_tree

    root = make_image_tree(tmp_path / "visda", n_per_class=3, size=16)
    run = FinetuneRun(preset("tiny", dataset="visda", data_root=str(root), fewshot_per_class=1))
    assert run.splits.num_classes == 12
    run.reset(0)
    stats = run.train_window([1.0] * run.num_groups)
    assert np.isfinite(stats.task_loss)
    acc = run.evaluate("test")
    assert 0.0 <= acc.mean_class <= 1.0


def test_every_proxy_is_scored_and_retention_drops_with_large_rates():
    run = FinetuneRun(preset("tiny"))
    assert set(run.proxy_names) == {"synthetic", "heldout_fonts", "real_fewshot"}
    for name in run.proxy_names:
        assert 0.0 <= run.evaluate(f"proxy/{name}").mean_class <= 1.0
    run.reset(0)
    assert run.imagenet_agreement() == 1.0  # untouched pretrained weights agree with themselves
    low = FinetuneRun(preset("tiny", guidance_weight=0.0, base_lr=3.0), splits=run.splits)
    low.reset(0)
    for _ in range(3):
        low.train_window([1.0] * low.num_groups)
    assert low.imagenet_agreement() < 1.0


def test_scratch_model_has_no_retention_score():
    run = FinetuneRun(preset("tiny", pretrained=False, guidance_weight=0.0))
    run.reset(0)
    assert np.isnan(run.imagenet_agreement())


def test_oracle_trains_on_real_digits_disjoint_from_its_test_half():
    oracle = build_splits(preset("tiny", train_domain="real", max_test=0))
    normal = build_splits(preset("tiny", max_test=0))
    assert not (_as_set(oracle.train) & _as_set(oracle.test))
    assert _as_set(oracle.train) <= _as_set(normal.test)  # real images, not renders
    assert len(oracle.train) + len(oracle.test) == len(normal.test)
    with pytest.raises(Exception, match="train-domain"):
        preset("tiny", dataset="visda", train_domain="real")
