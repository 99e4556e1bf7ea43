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
    a = build_splits(preset("tiny", proxy="synthetic"))
    b = build_splits(preset("tiny", proxy="heldout_fonts"))
    assert not torch.equal(a.proxy_val.tensors[0], b.proxy_val.tensors[0])
    # 'auto', the default: the reward candidates' pick on digits; VisDA has no fonts.
    assert (
        preset("tiny").reward_proxy == "heldout_fonts" == build_splits(preset("tiny")).chosen_proxy
    )
    assert preset("tiny", dataset="visda", data_root="/x").reward_proxy == "synthetic"


def test_teacher_is_frozen_and_unchanged_by_training(tiny_run):
    teacher = tiny_run.guidance.teacher
    assert teacher is not None and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    tiny_run.reset(0)
    stats = tiny_run.train_window([1.0] * tiny_run.num_groups)
    assert stats.guidance_loss > 0
    assert stats.teacher_seconds == 0  # fixed renders: its logits were computed once, up front
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


def test_visda_layout_with_another_class_count(tmp_path):
    """Any syn/real pair in the VisDA layout: the class count comes from the labels."""
    from trainables.data.image_list import make_image_tree
    from trainables.errors import DataError

    root = make_image_tree(tmp_path / "ten", n_per_class=2, size=16, num_classes=10)
    cfg = preset("tiny", dataset="visda", data_root=str(root), fewshot_per_class=1)
    run = FinetuneRun(cfg)
    assert run.splits.num_classes == 10 and run.model.task_head.out_features == 10
    with pytest.raises(DataError, match="no training images for classes 10"):
        FinetuneRun(cfg.replace(num_classes=12))


def test_every_proxy_is_scored_and_retention_drops_with_large_rates():
    run = FinetuneRun(preset("tiny"))
    assert set(run.proxy_names) == {"synthetic", "heldout_fonts", "real_fewshot"}
    for name in run.proxy_names:
        assert 0.0 <= run.evaluate(f"proxy/{name}").mean_class <= 1.0
    run.reset(0)
    kept = run.retention()  # untouched pretrained weights agree with themselves
    assert (kept.top1_agreement, kept.top5_overlap, kept.kl) == (1.0, 1.0, 0.0)
    low = FinetuneRun(preset("tiny", guidance_weight=0.0, base_lr=3.0), splits=run.splits)
    low.reset(0)
    for _ in range(3):
        low.train_window([1.0] * low.num_groups)
    lost = low.retention()
    assert lost.top5_overlap < 1.0 and lost.kl > 0.01


def test_scratch_model_has_no_retention_score():
    run = FinetuneRun(preset("tiny", pretrained=False, guidance_weight=0.0))
    run.reset(0)
    assert run.retention() is None


def test_oracle_trains_on_real_digits_disjoint_from_its_test_half():
    oracle = build_splits(preset("tiny", train_domain="real", max_test=0))
    normal = build_splits(preset("tiny", max_test=0))
    assert not (_as_set(oracle.train) & _as_set(oracle.test))
    assert _as_set(oracle.train) <= _as_set(normal.test)  # real images, not renders
    assert len(oracle.train) + len(oracle.test) == len(normal.test)
    with pytest.raises(Exception, match="train-domain"):
        preset("tiny", dataset="visda", train_domain="real")


def test_frozen_bn_is_asg_faithful_kl_is_zero_before_any_update():
    """ASG fine-tunes in eval mode: with identical weights the student's ImageNet head equals
    the teacher's, so the guidance KL of the first iteration is exactly 0."""
    run = FinetuneRun(preset("tiny", head_warmup_iters=0, guidance_weight=0.1))
    assert run.cfg.bn_mode == "frozen"
    run.reset(0)
    stats = run._train(1, start_iter=0, total_iters=1, schedule="constant")
    assert stats.guidance_loss == 0.0
    train_mode = FinetuneRun(preset("tiny", head_warmup_iters=0, bn_mode="train"))
    train_mode.reset(0)
    assert train_mode._train(1, 0, 1, "constant").guidance_loss > 0.0  # batch statistics differ


@pytest.mark.parametrize("bn_mode", ["frozen", "train"])
def test_all_zero_action_changes_nothing_only_with_frozen_bn(bn_mode):
    run = FinetuneRun(preset("tiny", bn_mode=bn_mode))
    run.reset(0)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.train_window([0.0] * run.num_groups)
    changed = [k for k, v in run.model.state_dict().items() if not torch.equal(v, before[k])]
    if bn_mode == "frozen":
        assert changed == []  # no parameter and no buffer moved
    else:
        assert any("running_mean" in k for k in changed)  # buffers drift with batch statistics


def test_head_warmup_trains_only_the_head_and_is_not_a_window():
    run = FinetuneRun(preset("tiny", head_warmup_iters=3))
    run.reset(0)
    fresh = FinetuneRun(preset("tiny", head_warmup_iters=0), splits=run.splits)
    fresh.reset(0)
    assert run.iteration == 0 and run.multipliers() == [1.0] * run.num_groups
    for name, p in run.model.named_parameters():
        q = dict(fresh.model.named_parameters())[name]
        assert torch.equal(p, q) != name.startswith("task_head"), name


def test_base_schedules():
    from trainables.optim import scheduled_base_lr as lr

    assert [lr(1.0, "step", i, 100) for i in (0, 49, 50, 74, 75)] == [1, 1, 0.1, 0.1, 0.01]
    assert lr(1.0, "constant", 99, 100) == 1.0
    assert lr(1.0, "cosine", 0, 100) == 1.0 and lr(1.0, "cosine", 100, 100) == 0.0
