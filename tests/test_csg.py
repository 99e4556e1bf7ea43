"""Unit tests of trainables/csg.py (CSG's contrastive guidance, A-pool, hyperspherical energy)."""

import math

import pytest
import torch
import torch.nn.functional as F

from trainables.csg import (
    ContrastiveGuidance,
    CSGConfig,
    apply_attention,
    attention_weights,
    attentional_pool,
    global_average_pool,
    hyperspherical_energy,
    info_nce,
)

CHANNELS = {"s1": 6, "s2": 4}


def make_guidance(**overrides) -> ContrastiveGuidance:
    torch.manual_seed(0)
    config = dict(stages=("s1", "s2"), dim=3, queue_size=5, temperature=0.2, momentum=0.9)
    config.update(overrides)
    return ContrastiveGuidance(CSGConfig(**config), CHANNELS)


def make_maps(batch: int = 2, seed: int = 1, grad: bool = False) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        s: torch.rand(batch, c, 3, 2, generator=gen).requires_grad_(grad)
        for s, c in CHANNELS.items()
    }


def test_config_validation():
    assert CSGConfig(stages=["a"]).stages == ("a",)
    for bad in (
        dict(pool="max"),
        dict(momentum=1.0),
        dict(momentum=-0.1),
        dict(temperature=0.0),
        dict(queue_size=0),
        dict(stages=()),
        dict(stages=("a", "a")),
        dict(stages="layer3"),
    ):
        with pytest.raises(ValueError):
            CSGConfig(**{"stages": ("a",), **bad})
    with pytest.raises(ValueError, match="s2"):
        ContrastiveGuidance(CSGConfig(stages=("s1", "s2")), {"s1": 4})


def test_info_nce_matches_hand_computation_with_positive_in_column_0():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    # Row 1 logits: [0.6, 0, -1] / t; row 2: [1, 1, 0] / t. Loss = mean of -log softmax[0].
    row1 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(-2.0)))
    row2 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(2.0) + math.exp(0.0)))
    loss = info_nce(q, k, queue, t)
    assert loss.item() == pytest.approx((row1 + row2) / 2, rel=1e-6)

    # Swapping the positive with the first negative changes the loss: column 0 is the positive.
    swapped_k = queue[0].expand(2, 2)
    swapped_queue = torch.stack([k[0], queue[1]])
    assert info_nce(q, swapped_k, swapped_queue, t).item() != pytest.approx(loss.item())


def test_key_mlp_is_ema_of_query_mlp():
    guidance = make_guidance(momentum=0.9)
    for stage in ("s1", "s2"):
        head = guidance.head(stage)
        for k, q in zip(head.mlp_k.parameters(), head.mlp_q.parameters(), strict=True):
            assert not k.requires_grad and q.requires_grad
            assert torch.equal(k, q)  # the key MLP starts as a copy
    with torch.no_grad():
        for p in guidance.head("s1").mlp_q.parameters():
            p.add_(torch.randn_like(p))
    old_k = [p.clone() for p in guidance.head("s1").mlp_k.parameters()]
    q_now = [p.clone() for p in guidance.head("s1").mlp_q.parameters()]

    guidance.momentum_update()
    new_k = list(guidance.head("s1").mlp_k.parameters())
    for k_old, k_new, q in zip(old_k, new_k, q_now, strict=True):
        assert not torch.equal(k_old, q)
        torch.testing.assert_close(k_new, 0.9 * k_old + 0.1 * q)
        # Moved toward the query by exactly (1 - m) of the gap.
        torch.testing.assert_close(k_new - k_old, 0.1 * (q - k_old))
    torch.testing.assert_close(list(guidance.head("s1").mlp_q.parameters()), q_now)

    loss = guidance(make_maps(grad=True), make_maps(seed=2))
    loss.backward()
    for head in guidance.stage_heads:
        assert all(p.grad is None for p in head.mlp_k.parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.mlp_q.parameters())
    trainable = [n for n, p in guidance.named_parameters() if p.requires_grad]
    assert trainable and all(".mlp_q." in n for n in trainable)


def test_enqueue_is_fifo_and_wraps_around():
    guidance = make_guidance(queue_size=5)
    start = guidance.queue("s1").clone()
    assert torch.allclose(start.norm(dim=1), torch.ones(5))  # initialised L2-normalised
    a = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    guidance.enqueue("s1", a)
    queue, ptr = guidance.queue("s1"), guidance.head("s1").ptr
    assert torch.equal(queue[:3], a) and torch.equal(queue[3:], start[3:])
    assert int(ptr) == 3
    b = -1 - torch.arange(9, dtype=torch.float32).reshape(3, 3)
    guidance.enqueue("s1", b)  # fills slots 3, 4, then wraps to slot 0
    assert torch.equal(queue[3:], b[:2]) and torch.equal(queue[0], b[2])
    assert torch.equal(queue[1:3], a[1:])
    assert int(ptr) == 1 and queue.shape == (5, 3)
    assert torch.equal(guidance.queue("s2"), make_guidance(queue_size=5).queue("s2"))

    # A batch larger than the queue: same result as writing the keys one at a time.
    big = torch.randn(7, 3)
    expected, p = queue.clone(), int(ptr)
    for key in big:
        expected[p], p = key, (p + 1) % 5
    guidance.enqueue("s1", big)
    assert torch.equal(guidance.queue("s1"), expected) and int(ptr) == p


def test_forward_enqueues_keys_without_gradient():
    guidance = make_guidance(queue_size=5)
    q_maps, k_maps = make_maps(grad=True), make_maps(seed=2)
    keys = guidance.keys("s2", k_maps["s2"])
    with torch.no_grad():
        guidance(q_maps, k_maps)  # evaluation: queues untouched
    assert int(guidance.head("s2").ptr) == 0

    loss = guidance(q_maps, k_maps)
    queue = guidance.queue("s2")
    torch.testing.assert_close(queue[:2], keys)
    assert int(guidance.head("s2").ptr) == 2
    assert not queue.requires_grad and queue.grad_fn is None
    assert all(not b.requires_grad for b in guidance.buffers())
    loss.backward()  # the in-place enqueue must not break backward
    assert queue.grad is None
    assert "stage_heads.0.queue" in guidance.state_dict()


def test_apool_equals_gap_on_constant_maps_and_not_otherwise():
    c = torch.rand(2, 4) + 0.1
    constant = c[:, :, None, None].expand(2, 4, 3, 5)
    torch.testing.assert_close(attention_weights(constant), torch.full((2, 15), 1 / 15))
    torch.testing.assert_close(attentional_pool(constant), global_average_pool(constant))

    v = torch.tensor([[[[1.0, 3.0]]]])  # C=1, H=1, W=2: g = 2, scores [2, 6]
    torch.testing.assert_close(attention_weights(v), torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(attentional_pool(v), torch.tensor([[2.5]]))  # GAP would be 2
    varied = torch.rand(2, 4, 3, 5)
    assert not torch.allclose(attentional_pool(varied), global_average_pool(varied))
    torch.testing.assert_close(attention_weights(varied).sum(1), torch.ones(2))
    assert torch.equal(attention_weights(torch.zeros(1, 2, 2, 2)), torch.zeros(1, 4))


def test_key_attention_from_another_map():
    guidance = make_guidance()
    k_maps, a_maps = make_maps(seed=2), make_maps(seed=3)
    head = guidance.head("s1")
    weights = attention_weights(a_maps["s1"])
    expected = F.normalize(head.mlp_k(apply_attention(k_maps["s1"], weights)), dim=1)
    torch.testing.assert_close(guidance.keys("s1", k_maps["s1"], a_maps["s1"]), expected)
    assert not torch.allclose(guidance.keys("s1", k_maps["s1"]), expected)

    q_maps = make_maps(grad=True)
    with torch.no_grad():
        plain = guidance(q_maps, k_maps)
        attended = guidance(q_maps, k_maps, a_maps)
    assert plain.item() != pytest.approx(attended.item())

    gap = make_guidance(pool="gap")
    with torch.no_grad():
        assert gap(q_maps, k_maps).item() == gap(q_maps, k_maps, a_maps).item()
    with pytest.raises(ValueError):
        apply_attention(k_maps["s1"], torch.ones(2, 5))


def test_loss_backpropagates_into_query_side_only():
    guidance = make_guidance()
    q_maps = make_maps(grad=True)
    k_maps, a_maps = make_maps(seed=2, grad=True), make_maps(seed=3, grad=True)
    loss = guidance(q_maps, k_maps, a_maps)
    assert loss.dim() == 0 and loss.requires_grad
    loss.backward()
    for stage in CHANNELS:
        assert q_maps[stage].grad is not None and q_maps[stage].grad.abs().sum() > 0
        assert k_maps[stage].grad is None and a_maps[stage].grad is None
    assert all(p.grad is not None for p in guidance.head("s2").mlp_q.parameters())


def test_loss_is_sum_of_per_stage_info_nce():
    guidance = make_guidance()
    q_maps, k_maps = make_maps(), make_maps(seed=2)
    with torch.no_grad():
        expected = 0.0
        for stage in CHANNELS:
            head = guidance.head(stage)
            q = F.normalize(head.mlp_q(attentional_pool(q_maps[stage])), dim=1)
            k = guidance.keys(stage, k_maps[stage])
            expected += info_nce(q, k, head.queue, 0.2).item()
        assert guidance(q_maps, k_maps).item() == pytest.approx(expected, rel=1e-6)


def circle(angles: torch.Tensor) -> torch.Tensor:
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def test_hyperspherical_energy():
    antipodal = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])  # unit vectors 2 apart after normalising
    assert hyperspherical_energy(antipodal, s=1.0) == pytest.approx(0.5)  # mean of 1/2 over pairs
    assert hyperspherical_energy(antipodal, s=2.0) == pytest.approx(0.25)
    assert hyperspherical_energy(antipodal, s=0.0) == pytest.approx(-math.log(2.0))
    triangle = circle(torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3]))
    assert hyperspherical_energy(triangle) == pytest.approx(1 / math.sqrt(3), rel=1e-6)

    n = 8
    even = circle(torch.arange(n) * 2 * math.pi / n)
    clustered = circle(torch.linspace(0.0, 0.3, n))
    for s in (0.0, 1.0, 2.0):
        assert hyperspherical_energy(even, s) < hyperspherical_energy(clustered, s)
    assert hyperspherical_energy(5 * even) == pytest.approx(hyperspherical_energy(even))
    with pytest.raises(ValueError):
        hyperspherical_energy(torch.ones(1, 2))


# --- in the fine-tuning run and the env ----------------------------------------------------------


@pytest.fixture(scope="module")
def resnet50_weights(tmp_path_factory):
    """A resnet50 state dict in torchvision's layout (random values: no download here)."""
    from trainables.models.resnet import random_weights_file

    return str(random_weights_file("resnet50", tmp_path_factory.mktemp("weights")))


def _csg_episode(seed: int, **overrides):
    from envs.syn_to_real import SynToRealEnv

    env = SynToRealEnv(
        "tiny",
        report_timing=True,
        guidance="csg",
        csg_queue_size=64,
        max_test=40,
        proxy_size=40,
        **overrides,
    )
    env.reset(seed=seed)
    done, infos = False, []
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample() * 0 + 3)
        infos.append(info)
        done = terminated or truncated
    return env, infos


@pytest.mark.parametrize("family", ["efficientnet_lite0", "resnet50"])
def test_csg_episode_runs_for_every_model_family_and_reproduces(family, resnet50_weights):
    extra = {"model": family} | ({"weights": resnet50_weights} if family == "resnet50" else {})
    env, first = _csg_episode(7, **extra)
    assert env.run.guidance.csg is not None
    assert env.run.guidance.csg.config.stages == env.run.model.map_stages
    assert all(i["teacher_seconds"] > 0 for i in first)  # the extra passes are reported
    last = first[-1]
    assert math.isfinite(last["test_feature_energy"]) and 0.0 <= last["test_acc"] <= 1.0
    _, again = _csg_episode(7, **extra)
    assert [i["proxy_acc"] for i in again] == [i["proxy_acc"] for i in first]
    assert again[-1]["test_acc"] == last["test_acc"]


def test_csg_heads_train_at_the_head_rate_and_restart_every_episode():
    from trainables.config import preset
    from trainables.finetune import FinetuneRun

    run = FinetuneRun(preset("tiny", guidance="csg", csg_queue_size=32, csg_pool="gap"))
    csg = run.guidance.csg
    run.reset(0)  # the head warm-up trains the head group, CSG's query heads included
    head_group = next(g for g in run.optimizer.param_groups if g["name"] == "head")
    trained = [p for p in csg.parameters() if p.requires_grad]
    assert all(any(p is q for q in head_group["params"]) for p in trained)
    # A zero multiplier everywhere: nothing moves, CSG's query heads included.
    before = trained[0].detach().clone()
    run.train_window([0.0] * run.num_groups)
    assert torch.equal(trained[0], before)
    queue = csg.queue(csg.config.stages[0]).clone()
    run.train_window([1.0] * run.num_groups)
    assert not torch.equal(trained[0], before)
    assert not torch.equal(csg.queue(csg.config.stages[0]), queue)
    # Every episode starts from the same heads and queue.
    run.reset(0)
    again = {k: v.clone() for k, v in csg.state_dict().items()}
    run.train_window([1.0] * run.num_groups)
    run.reset(0)
    assert all(torch.equal(v, again[k]) for k, v in csg.state_dict().items())


def test_csg_stage_names_are_checked():
    from trainables.config import preset
    from trainables.errors import ConfigError
    from trainables.finetune import FinetuneRun

    with pytest.raises(ConfigError, match="--csg-stages layer3: efficientnet_lite0 offers"):
        FinetuneRun(preset("tiny", guidance="csg", csg_stages="layer3"))
