"""Whole attention heads of a torch model's ``nn.MultiheadAttention`` layers, removed.

torch-pruning 1.6 prunes ``nn.MultiheadAttention`` along ``embed_dim``, the model's
residual width (every head narrower, the embedding and LayerNorms with it), and its head
pruning expects separate q/k/v ``nn.Linear`` layers (timm), which this module has not.
Here a layer keeps its width and loses whole heads: each is swapped for an exact
re-implementation, :class:`HeadAttention` (q/k/v/out projections laid out per head), its
heads are scored, and the lowest ``sparsity`` of them go from q, k, v (rows) and the
output projection (columns) together, never the last. ``l1``/``l2`` score a head by the
norms of its four weight blocks, ``activation`` by the mean |output| of the head (what the
output projection reads), ``perturbation`` by the mean change of the model's outputs
when the head is silenced, which is exactly the effect of removing it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgeship.compress._data import Dataset
from edgeship.compress.pruning import importance
from edgeship.compress.training.loop import predict_with_pre_hooks

__all__ = ["HeadAttention", "attention_layers", "prune_heads", "unsupported"]


class HeadAttention(nn.Module):
    """``nn.MultiheadAttention``'s computation with its own head count: ``embed_dim``
    wide in and out, ``num_heads × head_dim`` inside; ``heads`` are the original indices
    of the heads left (per-head attention masks are given for all of them)."""

    heads: torch.Tensor

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        e, h = mha.embed_dim, mha.num_heads
        self.embed_dim, self.num_heads, self.head_dim = e, h, e // h
        self.batch_first, self.dropout = mha.batch_first, mha.dropout
        # torch's encoder fast paths read these: False sends them to this forward
        self._qkv_same_embed_dim = False
        if mha.in_proj_weight is not None:
            wq, wk, wv = mha.in_proj_weight.detach().chunk(3)
        else:
            wq, wk, wv = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        self.q_proj_weight = nn.Parameter(wq.detach().clone())
        self.k_proj_weight = nn.Parameter(wk.detach().clone())
        self.v_proj_weight = nn.Parameter(wv.detach().clone())
        bias = mha.in_proj_bias
        self.in_proj_bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.out_proj = nn.Linear(e, e, bias=mha.out_proj.bias is not None)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        self.register_buffer("heads", torch.arange(h), persistent=False)
        self.original_heads = h

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,  # a hint only: attn_mask holds the causal mask
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        q, k, v = (
            t.unsqueeze(0 if self.batch_first else 1) if unbatched else t
            for t in (query, key, value)
        )
        if not self.batch_first:
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        b = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3
        q = self._split(F.linear(q, self.q_proj_weight, b[0]))
        k = self._split(F.linear(k, self.k_proj_weight, b[1]))
        v = self._split(F.linear(v, self.v_proj_weight, b[2]))
        scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)
        scores = scores + self._mask(attn_mask, key_padding_mask, scores)
        weights = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        out = (weights @ v).transpose(1, 2).flatten(2)
        out = self.out_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
        if not need_weights:
            return out, None
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return out, weights.squeeze(0) if unbatched else weights

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, length, heads·head_dim) → (batch, heads, length, head_dim)."""
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def _mask(
        self, attn: torch.Tensor | None, padding: torch.Tensor | None, scores: torch.Tensor
    ) -> torch.Tensor | float:
        """The additive mask over (batch, heads, query, key): masked entries -inf."""
        total: torch.Tensor | float = 0.0
        if attn is not None:
            attn = _additive(attn, scores.dtype)
            if attn.dim() == 3:  # per (batch·original head): keep the rows of heads left
                attn = attn.unflatten(0, (-1, self.original_heads)).index_select(1, self.heads)
            total = attn
        if padding is not None:
            total = total + _additive(padding, scores.dtype).reshape(
                scores.shape[0], 1, 1, scores.shape[-1]
            )
        return total

    def keep(self, heads: torch.Tensor) -> None:
        """Keep only the heads at positions ``heads`` (ascending) of the current ones."""
        rows = (heads[:, None] * self.head_dim + torch.arange(self.head_dim)).reshape(-1)
        for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            setattr(self, name, nn.Parameter(getattr(self, name).detach()[rows].clone()))
        if self.in_proj_bias is not None:
            width = self.num_heads * self.head_dim
            all_rows = torch.cat([rows + i * width for i in range(3)])
            self.in_proj_bias = nn.Parameter(self.in_proj_bias.detach()[all_rows].clone())
        self.out_proj.weight = nn.Parameter(self.out_proj.weight.detach()[:, rows].clone())
        self.out_proj.in_features = len(rows)
        self.num_heads = len(heads)
        self.heads = self.heads[heads]


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask (True: not attended) as -inf/0, a float mask as it is."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))


def unsupported(mha: nn.MultiheadAttention) -> str | None:
    """Why the heads of ``mha`` cannot be removed here, or None."""
    if mha.num_heads < 2:
        return "one attention head (it is never removed)"
    if mha.bias_k is not None or mha.add_zero_attn:
        return "attention with add_bias_kv/add_zero_attn is not pruned"
    return None


def attention_layers(module: nn.Module) -> dict[str, nn.MultiheadAttention]:
    """The model's ``nn.MultiheadAttention`` layers by name."""
    return {n: m for n, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)}


def prune_heads(
    module: nn.Module, sparsity: float, how: str, data: Dataset
) -> tuple[dict[str, Any], dict[str, str]]:
    """Remove ``sparsity`` of every attention layer's heads in place: per layer
    ``{"before": n, "after": m, "removed": [head, ...]}``, and the layers left alone
    with the reason."""
    found = attention_layers(module)
    skipped = {n: why for n, m in found.items() if (why := unsupported(m)) is not None}
    swapped = {m: HeadAttention(m) for n, m in found.items() if n not in skipped}
    _replace(module, swapped)
    layers = {n: swapped[m] for n, m in found.items() if m in swapped}
    scores = _scores(module, layers, how, data)
    done = {}
    for name, layer in layers.items():
        before = layer.num_heads
        keep = importance.top_indices(scores[name], importance.keep_count(before, sparsity))
        removed = sorted(set(range(before)) - set(keep.tolist()))
        layer.keep(torch.from_numpy(keep))
        done[name] = {"before": before, "after": layer.num_heads, "removed": removed}
    return done, skipped


def _replace(module: nn.Module, swapped: dict[nn.MultiheadAttention, HeadAttention]) -> None:
    """Every reference to a swapped layer (a layer may be shared) points to its copy."""
    for parent in list(module.modules()):
        for key, child in list(parent.named_children()):
            if child in swapped:
                setattr(parent, key, swapped[child])


def _scores(
    module: nn.Module, layers: dict[str, HeadAttention], how: str, data: Dataset
) -> dict[str, np.ndarray]:
    if how in ("l1", "l2"):
        return {n: _norms(layer, 1 if how == "l1" else 2) for n, layer in layers.items()}
    if how == "activation":
        return _activations(module, layers, data)
    return _perturbations(module, layers, data)


def _norms(layer: HeadAttention, p: int) -> np.ndarray:
    """Each head's q, k, v rows and output-projection columns, each normalised by its
    mean over heads (the projections' scales differ), summed."""
    h = layer.num_heads
    blocks = [
        (layer.q_proj_weight, 0),
        (layer.k_proj_weight, 0),
        (layer.v_proj_weight, 0),
        (layer.out_proj.weight, 1),
    ]
    total = np.zeros(h)
    for weight, axis in blocks:
        n = importance.block_norm(weight.detach().numpy(), h, axis, p)
        total += n / max(float(n.mean()), 1e-12)
    return total


def _activations(
    module: nn.Module, layers: dict[str, HeadAttention], data: Dataset
) -> dict[str, np.ndarray]:
    """Mean |output| of each head over the data: the output projection's input, per head."""
    sums = {n: np.zeros(layer.num_heads) for n, layer in layers.items()}

    def hook(name: str, layer: HeadAttention) -> Any:
        def record(_mod: nn.Module, inputs: Any) -> None:
            x = inputs[0].detach().abs().unflatten(-1, (layer.num_heads, -1))
            sums[name] += x.reshape(-1, layer.num_heads, x.shape[-1]).mean(dim=(0, 2)).numpy()

        return record

    predict_with_pre_hooks(
        module, data, {layer.out_proj: hook(n, layer) for n, layer in layers.items()}
    )
    return sums


def _perturbations(
    module: nn.Module, layers: dict[str, HeadAttention], data: Dataset
) -> dict[str, np.ndarray]:
    """Mean |Δ output| of the model when a head's output-projection columns are zeroed."""
    xs = [torch.from_numpy(a) for a in data.feeds.values()]
    scores = {}
    with torch.no_grad():
        base = module(*xs)
        for name, layer in layers.items():
            weight, d = layer.out_proj.weight, layer.head_dim
            scores[name] = np.zeros(layer.num_heads)
            for h in range(layer.num_heads):
                saved = weight[:, h * d : (h + 1) * d].clone()
                weight[:, h * d : (h + 1) * d].zero_()
                scores[name][h] = float((module(*xs) - base).abs().mean())
                weight[:, h * d : (h + 1) * d].copy_(saved)
    return scores
