"""Structured pruning of a torch model with torch-pruning's dependency graph, then
fine-tuning, then export to ONNX.

torch-pruning traces the module and prunes coupled layers together (BatchNorm, residual
adds, concatenations, the consumers' input channels). The layers producing the model's
outputs are left alone. ``l1``/``l2`` use its group magnitude importance; ``activation``
and ``perturbation`` use per-channel tables measured on data here. ``nn.MultiheadAttention``
layers lose whole heads instead (:mod:`.heads`); torch-pruning leaves them, and with them
the residual width they read and write, alone. With ``sparsity_search``, the largest
sparsity up to the one asked that holds the model is kept (:mod:`.sparsity_search`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeship.compress._data import Dataset, require
from edgeship.compress.config import ChannelPruneConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.pruning import heads
from edgeship.compress.pruning.sparsity_search import pruned
from edgeship.compress.training.loop import fit, predict_outputs, predict_with_pre_hooks
from edgeship.compress.training.torch_model import count_parameters, export_onnx
from edgeship.core.errors import CompressionError, NothingToPrune, UsageError
from edgeship.core.extras import import_optional

__all__ = ["PRUNABLE", "Layer", "narrow", "prune_channels_torch"]

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
Layer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear


def prune_channels_torch(job: Job[ChannelPruneConfig]) -> Outcome:
    """Prune ``job.source`` (the user's torch model) itself, then export it to ONNX."""
    config, source = job.config, job.source
    if source is None:
        raise UsageError("pruning with torch-pruning needs the torch model itself")
    data = require(job.data, "pruning a torch model (example inputs and export)")

    def prune(sparsity: float, out: Path) -> Outcome:
        module = source.build()
        teacher = predict_outputs(module, data)
        before = count_parameters(module)
        details: dict[str, Any] = {
            "importance": config.importance,
            "tool": "torch-pruning",
            **narrow(module, sparsity, config.importance, data.take(config.samples)),
            "parameters_before": before,
            "parameters_after": count_parameters(module),
        }
        notes = [f"not pruned: {k}: {v}" for k, v in details["not_pruned"].items()]
        if config.fine_tune.epochs > 0:
            details["fine_tune"] = fit(
                module, data, teacher, config.fine_tune, on_epoch=job.on_epoch
            ).to_dict()
        export_onnx(module, data.take(2).feeds, out, data.names)
        return Outcome(details=details, notes=notes)

    return pruned(job, prune)


def narrow(module: nn.Module, sparsity: float, how: str, data: Dataset) -> dict[str, Any]:
    """Prune ``module`` in place: ``layers``, per Conv/Linear ``{"before": n, "after": m}``
    channels; ``heads``, per attention layer the heads before, after and removed;
    ``not_pruned``, attention layers left alone and why."""
    # ONNX models are pruned without it
    tp = import_optional("torch_pruning", "pruning a torch model's channels")
    example = tuple(torch.from_numpy(a[:1]) for a in data.feeds.values())
    ignored = _output_layers(module, example)
    attention = heads.attention_layers(module)
    layers = _layers(module, attention)
    candidates = [n for n, m in layers.items() if m not in ignored]
    before = {n: _width(m) for n, m in layers.items()}
    if candidates:
        pruner = tp.pruner.MetaPruner(
            module,
            example[0] if len(example) == 1 else example,
            importance=_importance(tp, how, module, data, layers),
            pruning_ratio=sparsity,
            ignored_layers=[*ignored, *attention.values()],
        )
        pruner.step()
    removed, skipped = heads.prune_heads(module, sparsity, how, data)
    if not candidates and not removed:
        reasons = {n: "it produces a model output" for n in layers} | skipped
        raise NothingToPrune(reasons or {"model": "no Conv/Linear/attention layers"})
    return {
        "layers": {n: {"before": before[n], "after": _width(m)} for n, m in layers.items()},
        "heads": removed,
        "not_pruned": skipped,
    }


def _layers(module: nn.Module, attention: dict[str, nn.MultiheadAttention]) -> dict[str, Layer]:
    """Conv/Linear layers, less the output projections inside attention layers (which
    lose heads with their attention, not channels)."""
    inside = {m.out_proj for m in attention.values()}
    return {n: m for n, m in module.named_modules() if isinstance(m, PRUNABLE) and m not in inside}


def _width(m: nn.Module) -> int:
    return int(m.out_channels if hasattr(m, "out_channels") else m.out_features)  # type: ignore[arg-type]


def _output_layers(module: nn.Module, example: tuple[torch.Tensor, ...]) -> set[nn.Module]:
    """Conv/Linear layers whose output tensor is (one of) the model's outputs."""
    seen: dict[int, nn.Module] = {}
    hooks = [
        m.register_forward_hook(lambda mod, _i, o: seen.__setitem__(id(o), mod))
        for m in module.modules()
        if isinstance(m, PRUNABLE)
    ]
    try:
        with torch.no_grad():
            out = module(*example)
    finally:
        for h in hooks:
            h.remove()
    outs = out if isinstance(out, list | tuple) else [out]
    found = {seen[id(o)] for o in outs if id(o) in seen}
    if not found:
        raise UsageError(
            "cannot tell which layer produces the model output (is it followed by an "
            "activation?); prune it through ONNX instead"
        )
    return found


def _importance(
    tp: Any, how: str, module: nn.Module, data: Dataset, layers: dict[str, Layer]
) -> Any:
    if how in ("l1", "l2"):
        return tp.importance.GroupMagnitudeImportance(p=1 if how == "l1" else 2)
    scored = list(layers.values())
    if how == "activation":
        # what the consumers read (after BatchNorm, ReLU, residual adds), as the ONNX path
        consumers = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)
        return _table_importance(tp, _input_activation_table(module, data, scored), consumers)
    producers = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
    return _table_importance(tp, _perturbation_table(module, data, scored), producers)


def _table_importance(tp: Any, table: dict[nn.Module, torch.Tensor], fns: tuple[Any, ...]) -> Any:
    """An importance summing, per channel of a group's root, the table's scores of the
    group's layers pruned by ``fns``; each layer's channel order (``idxs``) is mapped onto
    the root's (``root_idxs``), as torch-pruning's own group importances do, so residual
    groups and flattened consumers line up."""

    class TableImportance(tp.importance.Importance):
        def __call__(self, group: Any) -> torch.Tensor:
            scored = [
                i
                for i, (dep, _) in enumerate(group)
                if dep.pruning_fn in fns and dep.layer in table
            ]
            if not scored:
                raise CompressionError(f"no score for pruning group rooted at {group[0].dep}")
            scores = torch.zeros(len(group[0].idxs))
            for i in scored:
                dep, idxs = group[i]
                root = torch.tensor(group[i].root_idxs)
                scores.scatter_add_(0, root, table[dep.layer][idxs].to(scores.dtype))
            return scores

    return TableImportance()


def _input_activation_table(
    module: nn.Module, data: Dataset, layers: list[Layer]
) -> dict[nn.Module, torch.Tensor]:
    """Per layer, the mean |input| of each input channel (conv) or feature (linear)."""
    sums: dict[nn.Module, torch.Tensor] = {}

    def hook(mod: nn.Module, inputs: Any) -> None:
        x = inputs[0]
        dims = (
            [d for d in range(x.dim()) if d != 1]
            if isinstance(mod, nn.Linear) is False
            else (list(range(x.dim() - 1)))
        )
        score = x.abs().mean(dim=dims).detach()
        sums[mod] = sums[mod] + score if mod in sums else score

    predict_with_pre_hooks(module, data, dict.fromkeys(layers, hook))
    return sums


def _perturbation_table(
    module: nn.Module, data: Dataset, layers: list[Layer]
) -> dict[nn.Module, torch.Tensor]:
    xs = [torch.from_numpy(a) for a in data.feeds.values()]
    table: dict[nn.Module, torch.Tensor] = {}
    with torch.no_grad():
        base = module(*xs)
        for m in layers:
            scores = torch.zeros(_width(m))
            for c in range(len(scores)):
                w, b = m.weight[c].clone(), None if m.bias is None else m.bias[c].clone()
                m.weight[c].zero_()
                if b is not None:
                    m.bias[c].zero_()  # type: ignore[index]
                scores[c] = (module(*xs) - base).abs().mean()
                m.weight[c].copy_(w)
                if b is not None:
                    m.bias[c].copy_(b)  # type: ignore[index]
            table[m] = scores
    return table
