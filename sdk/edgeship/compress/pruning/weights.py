"""Unstructured weight pruning of an ONNX model's Conv/Gemm/MatMul weights.

Importance is |w| (``magnitude``), |w·∂L/∂w| summed over data (``gradient``; the loss is
cross-entropy on labels, else on the base model's own top-1 outputs), or ``perturbation``:
each output unit's fan-in is zeroed in turn and the mean change of the outputs on data is
that unit's score, shared among its weights by magnitude. Weights are removed globally or
per layer, to a target sparsity or, with an accuracy budget, to the largest sparsity of a
sweep that keeps the drop within budget. Optional fine-tuning keeps the zeros fixed.

Scoring and fine-tuning run on a torch view of the graph (:mod:`.torch_graph`), so plain
ONNX files qualify; a torch model given by the user is exported to ONNX first.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeship.compress._data import Dataset, require
from edgeship.compress.config import PruneConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.pruning import importance
from edgeship.compress.pruning.sparsity_search import pruned
from edgeship.compress.training.loop import (
    distill_loss,
    fit,
    metric,
    outputs_of,
    predict_outputs,
    predict_torch,
)
from edgeship.compress.training.torch_graph import OnnxModule, to_tensors
from edgeship.models import onnx_graph

__all__ = ["SCORE_BATCH", "prune_weights", "row_axis"]

SCORE_BATCH = 8


def prune_weights(job: Job[PruneConfig]) -> Outcome:
    """The job's weights pruned into ``job.out``, at its sparsity or, with the sparsity
    search, at the largest up to it that holds (:func:`.sparsity_search.pruned`)."""

    def prune(sparsity: float, out: Path) -> Outcome:
        return _prune(job, replace(job.config, sparsity=sparsity), out)

    return pruned(job, prune)


def _prune(job: Job[PruneConfig], config: PruneConfig, out: Path) -> Outcome:
    data = job.data
    model = onnx_graph.load(job.base)
    names = onnx_graph.prunable_weights(model)
    why = config.needs_data()
    if why is not None:
        data = require(data, why)
    module = OnnxModule(model) if why is not None else None
    scores = _scores(model, module, names, config, data)
    notes: list[str] = []
    sparsity = config.sparsity
    sweep: list[dict[str, float]] = []
    if config.accuracy_budget_pt is not None:
        assert module is not None and data is not None
        sparsity, sweep = _sweep(module, scores, config, data)
        if sparsity == 0.0:
            notes.append("no sparsity step kept the accuracy within the budget: nothing removed")
    masks = importance.weight_masks(scores, sparsity, config.scope)
    log = None
    if module is not None:
        _apply(module, masks)
        if config.fine_tune.epochs > 0:
            assert data is not None
            teacher = _base_outputs(model, data)
            log = fit(
                module,
                data,
                teacher,
                config.fine_tune,
                lambda: _apply(module, masks),
                on_epoch=job.on_epoch,
            )
        module.write_back(model)
    for name, mask in masks.items():
        values = onnx_graph.arrays(model)[name]
        onnx_graph.set_array(model, name, np.where(mask, values, 0).astype(values.dtype))
    onnx_graph.save(model, out)
    return Outcome(details=_details(model, names, config, sparsity, sweep, log), notes=notes)


def _scores(
    model: Any,
    module: OnnxModule | None,
    names: list[str],
    config: PruneConfig,
    data: Dataset | None,
) -> dict[str, np.ndarray]:
    values = onnx_graph.arrays(model)
    if config.importance == "magnitude":
        return {n: importance.magnitude(values[n]) for n in names}
    assert module is not None and data is not None
    sample = data.take(config.samples)
    if config.importance == "gradient":
        return _gradient_scores(module, names, sample, _base_outputs(model, sample)[0])
    return _perturbation_scores(model, module, names, sample)


def _gradient_scores(
    module: OnnxModule, names: list[str], data: Dataset, teacher: np.ndarray
) -> dict[str, np.ndarray]:
    """Σ over small batches of |w · ∂L/∂w| (first-order Taylor estimate of the loss change
    when w is zeroed; summed as magnitudes so that batches cannot cancel out)."""
    scores = {n: np.zeros(module.param(n).shape, dtype=np.float64) for n in names}
    for start in range(0, len(data), SCORE_BATCH):
        part = data.slice(start, start + SCORE_BATCH)
        module.zero_grad()
        out = module(*to_tensors(part.feeds, module.input_names)).reshape(len(part), -1)
        # Without labels the base's own top-1 serves: the KL to itself has zero gradient.
        hard = (
            part.labels if part.labels is not None else teacher[start : start + len(part)].argmax(1)
        )
        distill_loss(out, None, torch.from_numpy(hard.astype(np.int64)), 1.0, 0.0).backward()
        for n in names:
            p = module.param(n)
            if p.grad is not None:
                scores[n] += (p.detach() * p.grad).abs().numpy()
    module.zero_grad()
    return scores


def row_axis(model: Any, weight: str) -> int:
    """The axis of ``weight`` that indexes output units (Conv: 0, Gemm: by transB, MatMul: 1)."""
    for node in model.graph.node:
        if len(node.input) > 1 and node.input[1] == weight:
            if node.op_type == "Conv":
                return 0
            if node.op_type == "Gemm":
                transb = next((a.i for a in node.attribute if a.name == "transB"), 0)
                return 0 if transb else 1
            return 1
    raise KeyError(weight)


def _perturbation_scores(
    model: Any, module: OnnxModule, names: list[str], data: Dataset
) -> dict[str, np.ndarray]:
    xs = to_tensors(data.feeds, module.input_names)
    scores = {}
    with torch.no_grad():
        base = module(*xs)
        for n in names:
            p, axis = module.param(n), row_axis(model, n)
            rows = np.zeros(p.shape[axis], dtype=np.float64)
            for r in range(len(rows)):
                saved = p.select(axis, r).clone()
                p.select(axis, r).zero_()
                rows[r] = float((module(*xs) - base).abs().mean())
                p.select(axis, r).copy_(saved)
            scores[n] = importance.spread_over_rows(p.detach().numpy(), rows, axis)
    return scores


def _apply(module: OnnxModule, masks: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        for name, mask in masks.items():
            module.param(name).mul_(torch.from_numpy(mask.astype(np.float32)))


def _sweep(
    module: OnnxModule, scores: dict[str, np.ndarray], config: PruneConfig, data: Dataset
) -> tuple[float, list[dict[str, float]]]:
    """Largest sparsity (in ``step`` increments up to ``sparsity``) within the budget."""
    originals = {n: module.param(n).detach().clone() for n in scores}
    base_logits = predict_torch(module, data)
    classes = outputs_of(module, data).kind == "classes"
    _, base_value = metric(base_logits, data, base_logits, classes)
    best, rows = 0.0, []
    levels = np.arange(config.step, config.sparsity + 1e-9, config.step)
    for level in levels:
        _apply(module, importance.weight_masks(scores, float(level), config.scope))
        _, value = metric(predict_torch(module, data), data, base_logits, classes)
        drop = 100.0 * (base_value - value)
        rows.append({"sparsity": round(float(level), 6), "metric": value, "drop_pt": drop})
        with torch.no_grad():
            for n, v in originals.items():
                module.param(n).copy_(v)
        if drop > config.accuracy_budget_pt:  # type: ignore[operator]
            break
        best = float(level)
    return best, rows


def _base_outputs(model: Any, data: Dataset) -> list[np.ndarray]:
    return predict_outputs(OnnxModule(model), data)


def _details(
    model: Any,
    names: list[str],
    config: PruneConfig,
    sparsity: float,
    sweep: list[dict[str, float]],
    log: Any,
) -> dict[str, Any]:
    values = onnx_graph.arrays(model)
    layers = {
        n: {
            "shape": list(values[n].shape),
            "sparsity": round(float(1.0 - np.count_nonzero(values[n]) / values[n].size), 6),
        }
        for n in names
    }
    total = sum(values[n].size for n in names)
    zeros = sum(values[n].size - np.count_nonzero(values[n]) for n in names)
    return {
        "importance": config.importance,
        "scope": config.scope,
        "requested_sparsity": sparsity,
        "weight_sparsity": round(float(zeros / total), 6),
        "layers": layers,
        "sweep": sweep,
        "fine_tune": None if log is None else log.to_dict(),
    }
