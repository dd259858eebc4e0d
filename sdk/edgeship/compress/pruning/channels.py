"""Structured pruning of ONNX graphs by surgery: whole neurons and output channels go.

Post-training and without training code: groups of tied channels come from
:mod:`.channel_groups`; each unblocked group keeps its most important ``1 − sparsity``
channels (a multiple of :data:`CHANNEL_BLOCK` where the group has one), scored by the
L1/L2 norm of the producing weights, by the mean absolute activation on data, or by
perturbation (the channel's inputs to its consumers are zeroed
and the mean change of the model's outputs on data is its score, which is exactly the
effect of removing it). Layers that could not be pruned are reported with the reason.
Optional fine-tuning then trains the smaller graph through :mod:`.torch_graph`. With
``sparsity_search``, the largest sparsity up to the one asked that holds the model is
kept (:mod:`.sparsity_search`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeship.compress._data import Dataset, require
from edgeship.compress.config import ChannelPruneConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.pruning import importance
from edgeship.compress.pruning.channel_groups import Group, Slice, find_groups
from edgeship.compress.pruning.sparsity_search import pruned
from edgeship.compress.training.loop import fit, predict_outputs
from edgeship.compress.training.torch_graph import OnnxModule, to_tensors
from edgeship.core.errors import NothingToPrune
from edgeship.models import onnx_graph

__all__ = ["CHANNEL_BLOCK", "prune_channels_onnx", "shrink"]

CHANNEL_BLOCK = 8
"""A layer of a multiple of this many channels keeps a multiple of it: ONNX Runtime's x86
convolutions work on blocks of 8 channels, and other counts fall back to slower kernels
(the corpus MobileNet with a quarter of its channels removed ran 1.7× slower than its base
at the counts the sparsity gave, 1.2× faster at multiples of 8)."""


def prune_channels_onnx(job: Job[ChannelPruneConfig]) -> Outcome:
    config, data = job.config, job.data
    why = config.needs_data()
    if why is not None:
        data = require(data, why)

    def prune(sparsity: float, out: Path) -> Outcome:
        model = onnx_graph.load(job.base)
        # Shrink first: a graph with nothing to prune says so before its ops are looked at.
        details = shrink(model, sparsity, config.importance, data, config.samples)
        notes = [f"not pruned: {k}: {v}" for k, v in details["not_pruned"].items()]
        if config.fine_tune.epochs > 0:
            assert data is not None
            teacher = predict_outputs(OnnxModule(onnx_graph.load(job.base)), data)
            module = OnnxModule(model)
            details["fine_tune"] = fit(
                module, data, teacher, config.fine_tune, on_epoch=job.on_epoch
            ).to_dict()
            module.write_back(model)
        onnx_graph.save(model, out)
        return Outcome(details=details, notes=notes)

    return pruned(job, prune)


def shrink(
    model: Any, sparsity: float, how: str, data: Dataset | None = None, samples: int = 256
) -> dict[str, Any]:
    """Remove ``sparsity`` of every prunable group's channels in place; what was done."""
    onnx_graph.prunable_weights(model)  # refuses a graph without weights, naming its ops
    groups = find_groups(model)
    blocked = {layer: g.blocked for g in groups if g.blocked for layer in g.layers}
    prunable = [g for g in groups if not g.blocked]
    if not prunable:
        raise NothingToPrune({k: str(v) for k, v in blocked.items()})
    scores = _scores(model, prunable, how, None if data is None else data.take(samples))
    layers = {}
    for group, score in zip(prunable, scores, strict=True):
        kept = importance.keep_count(group.channels, sparsity, CHANNEL_BLOCK)
        keep = importance.top_indices(score, kept)
        _cut(model, group, keep)
        for layer in group.layers:
            layers[layer] = {"channels": group.channels, "kept": len(keep)}
    del model.graph.value_info[:]
    return {"importance": how, "layers": layers, "not_pruned": blocked}


def _scores(model: Any, groups: list[Group], how: str, data: Dataset | None) -> list[np.ndarray]:
    values = onnx_graph.arrays(model)
    if how in ("l1", "l2"):
        p = 1 if how == "l1" else 2
        out = []
        for g in groups:
            norms = [
                importance.channel_norm(values[s.array], s.axis, p)
                for s in g.slices
                if s.role == "producer" and values[s.array].ndim >= 2
            ]
            out.append(np.sum([n / max(float(n.mean()), 1e-12) for n in norms], axis=0))
        return out
    assert data is not None
    module = OnnxModule(model)
    xs = to_tensors(data.feeds, module.input_names)
    if how == "activation":
        return [_activation(module, xs, g) for g in groups]
    return [_perturbation(module, xs, g) for g in groups]


def _activation(module: OnnxModule, xs: list[torch.Tensor], group: Group) -> np.ndarray:
    with torch.no_grad():
        tensors = module.run_all(xs, [t for t, _ in group.feeds])[len(module.output_names) :]
    total = np.zeros(group.channels)
    for (_, axis), t in zip(group.feeds, tensors, strict=True):
        a = np.moveaxis(t.abs().numpy(), axis, 0).reshape(group.channels, -1)
        total += a.mean(axis=1)
    return total


def _perturbation(module: OnnxModule, xs: list[torch.Tensor], group: Group) -> np.ndarray:
    consumers = [s for s in group.slices if s.role == "consumer"]
    scores = np.zeros(group.channels)
    with torch.no_grad():
        base = module(*xs)
        for c in range(group.channels):
            saved = [(s, _zero(module.param(s.array), s, c)) for s in consumers]
            if not consumers:  # the group's channels are only ever added up: drop producers
                saved = [(s, _zero(module.param(s.array), s, c)) for s in group.slices]
            scores[c] = float((module(*xs) - base).abs().mean())
            for s, old in saved:
                _indices_view(module.param(s.array), s, c).copy_(old)
    return scores


def _channel_index(piece: Slice, c: int) -> slice:
    return slice(c * piece.block, (c + 1) * piece.block)


def _indices_view(param: torch.Tensor, piece: Slice, c: int) -> torch.Tensor:
    return param.narrow(piece.axis, c * piece.block, piece.block)


def _zero(param: torch.Tensor, piece: Slice, c: int) -> torch.Tensor:
    view = _indices_view(param, piece, c)
    old = view.clone()
    view.zero_()
    return old


def _cut(model: Any, group: Group, keep: np.ndarray) -> None:
    values = onnx_graph.arrays(model)
    done: set[tuple[str, int]] = set()
    for piece in group.slices:
        if (piece.array, piece.axis) in done:
            continue
        done.add((piece.array, piece.axis))
        idx = (
            keep
            if piece.block == 1
            else (keep[:, None] * piece.block + np.arange(piece.block)).ravel()
        )
        values[piece.array] = np.take(values[piece.array], idx, axis=piece.axis)
        onnx_graph.set_array(model, piece.array, values[piece.array])
    for node in model.graph.node:
        if onnx_graph.node_label(node) in group.regroup:
            for attr in node.attribute:
                if attr.name == "group":
                    attr.i = len(keep)
