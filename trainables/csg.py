"""Contrastive guidance from CSG ("Contrastive Syn-to-Real Generalization", ICLR 2021).

CSG keeps a model that is fine-tuned on synthetic images close to its ImageNet start, not by
matching predictions (ASG's proxy guidance) but with a MoCo-style contrastive loss per chosen
backbone stage:

* the **query encoder** is the model being fine-tuned; its feature map at a stage, on the view
  ``x_q``, is pooled and sent through a trained projection MLP ``Linear(C, C)-ReLU-Linear(C, dim)``;
* the **key encoder** is a frozen copy of the ImageNet backbone (not part of this module: the
  training loop runs it and passes its feature maps in); its feature map on a second,
  independently augmented view ``x_k`` is pooled and sent through a key-side MLP whose weights are
  an exponential moving average (EMA) of the query-side MLP's;
* the loss is InfoNCE: the query must pick out its own key among the keys of past batches, which
  are kept in a per-stage FIFO queue.

How a training step uses it::

    guidance = ContrastiveGuidance(CSGConfig(stages=("layer3", "layer4")), channels)
    q_maps = features_of(model, x_q)                 # query encoder, with gradient
    with torch.no_grad():
        k_maps = features_of(frozen_imagenet, x_k)   # key encoder
        a_maps = features_of(model, x_k)             # key attention source (A-pool only)
    loss = task_loss + 0.1 * guidance(q_maps, k_maps, a_maps)  # enqueues this batch's keys
    loss.backward(); optimizer.step()
    guidance.momentum_update()                       # EMA of the key MLPs, once per step

The optimizer must include ``guidance``'s query MLPs (its trainable parameters). Keys are
enqueued by ``forward`` whenever autograd is enabled (``torch.is_grad_enabled()``), i.e. during
training steps; under ``torch.no_grad()`` (evaluation) the queues are left alone. The gate is grad
mode rather than ``self.training`` because, as in ASG, the fine-tuned model is kept in ``eval()``
mode during training to freeze its BatchNorm statistics, which would also switch this module off.
``enqueue`` is public for loops that want to drive the queue themselves.

Also here: A-pool (CSG's attentional pooling) and the hyperspherical energy diagnostic
(Liu et al., NeurIPS 2018) that CSG uses to argue that the guidance keeps features diverse.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

POOLS = ("apool", "gap")


@dataclass(frozen=True)
class CSGConfig:
    """Hyper-parameters of the contrastive guidance (defaults are CSG's)."""

    stages: tuple[str, ...]
    dim: int = 128
    queue_size: int = 65536
    temperature: float = 0.07
    momentum: float = 0.999
    pool: str = "apool"

    def __post_init__(self) -> None:
        if isinstance(self.stages, str):
            raise ValueError(f"stages must be a sequence of names, not the string {self.stages!r}")
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages must be non-empty and unique, got {self.stages}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")


# --- pooling -------------------------------------------------------------------------------------


def global_average_pool(v: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C): mean over spatial positions."""
    return v.mean(dim=(2, 3))


def attention_weights(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """A-pool weights of a (B, C, H, W) feature map, shape (B, H*W), each row summing to 1.

    a_ij = <v_ij, g> / sum_i'j' <v_i'j', g> with g = GAP(v). The denominator equals
    H*W*||g||^2 >= 0; it is clamped to ``eps`` so an all-zero map gives all-zero weights. The
    weights are non-negative when ``v`` is (CSG applies A-pool to ReLU outputs).
    """
    g = global_average_pool(v)
    scores = torch.einsum("bcn,bc->bn", v.flatten(2), g)
    return scores / scores.sum(dim=1, keepdim=True).clamp_min(eps)


def apply_attention(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Pool a (B, C, H, W) map with spatial weights ``a`` of shape (B, H*W): sum_ij a_ij v_ij."""
    if a.shape != (v.shape[0], v.shape[2] * v.shape[3]):
        raise ValueError(f"weights of shape {tuple(a.shape)} do not fit a map {tuple(v.shape)}")
    return torch.einsum("bcn,bn->bc", v.flatten(2), a)


def attentional_pool(v: torch.Tensor) -> torch.Tensor:
    """A-pool of a (B, C, H, W) map with its own attention weights -> (B, C)."""
    return apply_attention(v, attention_weights(v))


# --- loss ----------------------------------------------------------------------------------------


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """MoCo's InfoNCE, averaged over the batch.

    ``q`` and ``k`` are (B, D) and ``queue`` is (K, D), all expected L2-normalised. Logits are
    ``[q.k, q.queue^T] / temperature`` of shape (B, 1 + K): the positive is column 0, which is the
    cross-entropy target. ``k`` and ``queue`` are treated as constants (no gradient).
    """
    k = k.detach()
    queue = queue.detach().to(q.dtype)
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.t()
    logits = torch.cat([positive, negatives], dim=1) / temperature
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def _projection(channels: int, dim: int) -> nn.Sequential:
    """CSG's projection head: Linear(C, C) - ReLU - Linear(C, dim)."""
    return nn.Sequential(
        nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim)
    )


class _Stage(nn.Module):
    """One stage's query MLP, EMA key MLP, key queue and queue pointer."""

    def __init__(self, channels: int, dim: int, queue_size: int) -> None:
        super().__init__()
        self.mlp_q = _projection(channels, dim)
        self.mlp_k = copy.deepcopy(self.mlp_q)
        for p in self.mlp_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))


class ContrastiveGuidance(nn.Module):
    """CSG's contrastive guidance over several backbone stages (see the module docstring).

    ``channels`` maps each stage in ``config.stages`` to its feature map's channel count C.
    Parameters: per stage, a trained query MLP and an EMA key MLP (``requires_grad`` False).
    Buffers: per stage, a (queue_size, dim) queue of L2-normalised keys and its write pointer.
    """

    def __init__(self, config: CSGConfig, channels: dict[str, int]) -> None:
        super().__init__()
        missing = [s for s in config.stages if s not in channels]
        if missing:
            raise ValueError(f"no channel count for stages {missing}")
        self.config = config
        # A list, not a ModuleDict, because stage names may contain dots ("layer3.1").
        self.stage_heads = nn.ModuleList(
            _Stage(channels[s], config.dim, config.queue_size) for s in config.stages
        )
        self._index = {s: i for i, s in enumerate(config.stages)}

    def head(self, stage: str) -> _Stage:
        """The MLPs and queue of ``stage`` (attributes mlp_q, mlp_k, queue, ptr)."""
        return self.stage_heads[self._index[stage]]

    def queue(self, stage: str) -> torch.Tensor:
        """The (queue_size, dim) key queue of ``stage``."""
        return self.head(stage).queue

    def _pool(self, v: torch.Tensor) -> torch.Tensor:
        if v.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) feature map, got shape {tuple(v.shape)}")
        return attentional_pool(v) if self.config.pool == "apool" else global_average_pool(v)

    @torch.no_grad()
    def keys(
        self, stage: str, key_map: torch.Tensor, attention_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised keys (B, dim) of ``stage``, without gradient.

        With A-pool and an ``attention_map`` (the query encoder's features on the key view), the
        attention weights come from that map and are applied to ``key_map``; otherwise the key map
        is pooled on its own. ``attention_map`` is ignored with ``pool="gap"``.
        """
        if self.config.pool == "apool" and attention_map is not None:
            pooled = apply_attention(key_map, attention_weights(attention_map))
        else:
            pooled = self._pool(key_map)
        return F.normalize(self.head(stage).mlp_k(pooled), dim=1)

    def forward(
        self,
        query_maps: dict[str, torch.Tensor],
        key_maps: dict[str, torch.Tensor],
        key_attention_maps: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Sum over stages of InfoNCE(q, k, queue) (unweighted; the caller applies the weight).

        Side effect: when ``torch.is_grad_enabled()``, each stage's keys are enqueued after its
        loss is computed (the loss uses the queue as it was before this batch).
        """
        total = None
        for stage in self.config.stages:
            head = self.head(stage)
            q = F.normalize(head.mlp_q(self._pool(query_maps[stage])), dim=1)
            attention = None if key_attention_maps is None else key_attention_maps.get(stage)
            k = self.keys(stage, key_maps[stage], attention)
            # Clone: the in-place enqueue below must not touch the tensor saved for backward.
            loss = info_nce(q, k, head.queue.clone(), self.config.temperature)
            total = loss if total is None else total + loss
            if torch.is_grad_enabled():
                self.enqueue(stage, k)
        return total

    @torch.no_grad()
    def enqueue(self, stage: str, keys: torch.Tensor) -> None:
        """Write ``keys`` (B, dim) into ``stage``'s FIFO queue at its pointer, wrapping around.

        The oldest entries are overwritten; the queue size never changes. A batch larger than the
        queue leaves only its last ``queue_size`` keys, as if written one after another.
        """
        head = self.head(stage)
        keys = keys.detach().to(head.queue.dtype)
        size, n = head.queue.shape[0], keys.shape[0]
        start = head.ptr  # stays on the device: no host sync per training step
        if n > size:
            start = (start + (n - size)) % size
            keys, n = keys[n - size :], size
        index = (start + torch.arange(n, device=keys.device)) % size
        head.queue[index] = keys
        head.ptr.copy_((start + n) % size)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """EMA step of every key MLP: k = m * k + (1 - m) * q. Call once per training step."""
        m = self.config.momentum
        for head in self.stage_heads:
            for k, q in zip(head.mlp_k.parameters(), head.mlp_q.parameters(), strict=True):
                k.mul_(m).add_(q.detach(), alpha=1.0 - m)


# --- diagnostics ---------------------------------------------------------------------------------


@torch.no_grad()
def hyperspherical_energy(features: torch.Tensor, s: float = 1.0, eps: float = 1e-6) -> float:
    """Hyperspherical energy (Liu et al., 2018) of the rows of ``features`` (N, D), N >= 2.

    Rows are L2-normalised to unit vectors w_i. The energy is the **average over the N(N-1)
    ordered pairs i != j** (not the sum, so it does not grow with N) of ||w_i - w_j||^(-s) for
    s > 0, and of log(1 / ||w_i - w_j||) for s = 0. Distances are clamped to ``eps`` so that
    coincident points give a large finite value. Lower energy = more uniformly spread features.
    """
    if s < 0:
        raise ValueError(f"s must be >= 0, got {s}")
    n = features.shape[0]
    if features.dim() != 2 or n < 2:
        raise ValueError(f"expected (N, D) features with N >= 2, got {tuple(features.shape)}")
    w = F.normalize(features.double(), dim=1)
    dist = torch.cdist(w, w)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=w.device)
    d = dist[off_diagonal].clamp_min(eps)
    energy = -torch.log(d) if s == 0 else d.pow(-s)
    return float(energy.mean())
