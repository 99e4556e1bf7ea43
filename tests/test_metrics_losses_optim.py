"""Metric, guidance losses and layer-wise learning rates, against hand-computed values."""

import math

import pytest
import torch

from trainables import losses
from trainables.metrics import accuracy_from_confusion, confusion_matrix
from trainables.optim import apply_base_lr, make_sgd, scheduled_base_lr, set_lr_scales


def test_mean_class_accuracy_weights_classes_equally():
    # class 0: 9/10 right, class 1: 0/1 right -> overall 9/11, mean-class 0.45
    labels = torch.tensor([0] * 10 + [1])
    preds = torch.tensor([0] * 9 + [1] + [0])
    acc = accuracy_from_confusion(confusion_matrix(preds, labels, 3))
    assert acc.overall == pytest.approx(9 / 11)
    assert acc.mean_class == pytest.approx(0.45)
    assert math.isnan(acc.per_class[2])  # absent class: not counted as 0%


def test_proxy_guidance_kl_matches_definition():
    torch.manual_seed(0)
    s, t = torch.randn(4, 1000), torch.randn(4, 1000)
    p_t = t.softmax(1)
    expected = (p_t * (p_t.log() - s.log_softmax(1))).sum(1).mean()
    assert losses.proxy_guidance_kl(s, t).item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses.proxy_guidance_kl(t, t).item() == pytest.approx(0.0, abs=1e-6)


def test_l2sp_and_feature_l2():
    lin = torch.nn.Linear(2, 1)
    ref = {n: p.detach().clone() for n, p in lin.named_parameters()}
    assert losses.l2_sp(lin, ref).item() == 0.0
    with torch.no_grad():
        lin.weight += 1.0
    assert losses.l2_sp(lin, ref).item() == pytest.approx(2.0)
    assert losses.feature_l2(torch.ones(3, 4), torch.zeros(3, 4)).item() == pytest.approx(4.0)


def test_lr_scale_composes_with_the_base_schedule():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = make_sgd({"backbone": [a], "head": [b]}, base_lr=0.1, momentum=0.9, weight_decay=0)
    set_lr_scales(opt, [0.1, 1.0])
    base = scheduled_base_lr(0.1, "cosine", it=50, total=100)
    assert base == pytest.approx(0.05)
    apply_base_lr(opt, base)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005, 0.05])
    assert scheduled_base_lr(0.1, "constant", 99, 100) == 0.1
    with pytest.raises(ValueError):
        set_lr_scales(opt, [1.0])
