"""Guards against a silent wrong result: a collapsed model, a no-op, a larger "compressed" one.

Pure functions over the outputs of the base and the produced model on the same inputs
(held-out data, or inputs generated at the model's real shape) and over the produced
graph's weights; :func:`~edgeship.compress.compress` raises what they find.

A *collapse* is any of: outputs that are no longer finite, an output that is constant
over the samples (all zeros included) where the base's varies, a weight of a
Conv/Gemm/MatMul that is all zeros where the base's was not (a whole layer pruned away),
and, by the kind of output (:func:`edgeship.models.fidelity.is_class_scores`):

* class scores: top-1 agreement with the base below :attr:`GuardPolicy.min_top1`, with
  labels an accuracy drop beyond :attr:`GuardPolicy.max_drop_pt`, and for a method that
  does not train a mean |Δ| beyond :attr:`GuardPolicy.max_relative_error` times the base's
  mean |output| (logits 100× off keep their arg-max, not their meaning) and a cosine
  below :attr:`GuardPolicy.min_cosine` (on a few held-out samples an unsure base's
  arg-max agrees by chance: PaddleOCR's direction classifier under INT8 kept 6 of 8
  while its probabilities moved by 0.22 on average, cosine 0.84); the logits of a
  fine-tuned or distilled model legitimately differ in scale and offset, so no cosine;
* maps, sequences, anything else: cosine similarity below :attr:`GuardPolicy.min_cosine`.

A *no-op* is identical outputs at the same size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeship.core.errors import CompressionError, UsageError
from edgeship.models.fidelity import Fidelity

__all__ = [
    "HINTS",
    "FidelityCollapse",
    "GuardPolicy",
    "NoChange",
    "collapse_message",
    "collapse_reasons",
    "hint",
    "is_no_op",
    "larger_note",
    "zeroed_layers",
]

HINTS = {
    "prune": "--scope layer, a lower --sparsity, or --epochs N (fine-tuning on --data)",
    "prune-channels": (
        "--epochs N (fine-tuning on --data), --importance activation (channels scored on "
        "--data, not by their weights' norms) or a lower --sparsity"
    ),
    "int8-static": "fp16, --exclude-op OP (keep those op types in float) or --calibration entropy",
    "int8-dynamic": "fp16 or --exclude-op OP (keep those op types in float)",
    "fp16": "--exclude-op OP (keep those op types in float32)",
    "distill": "more --epochs or a larger --width",
}


@dataclass(frozen=True)
class GuardPolicy:
    """When a produced model counts as collapsed; ``allow_degraded`` keeps it anyway
    (with a note) instead of failing."""

    min_cosine: float = 0.9
    min_top1: float = 0.7
    max_drop_pt: float = 20.0
    max_relative_error: float = 1.0
    allow_degraded: bool = False

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_cosine <= 1.0 or not 0.0 <= self.min_top1 <= 1.0:
            raise UsageError("min_cosine must lie in [-1, 1] and min_top1 in [0, 1]")
        if self.max_drop_pt < 0:
            raise UsageError(f"max_drop_pt must be >= 0, got {self.max_drop_pt}")


class FidelityCollapse(CompressionError):
    """The produced model no longer computes what its base does; ``reasons`` say how."""

    def __init__(self, message: str, reasons: Sequence[str]) -> None:
        super().__init__(message, reasons=list(reasons))
        self.reasons = list(reasons)


class NoChange(CompressionError):
    """The method changed nothing: same size, identical outputs."""


def collapse_reasons(
    base: np.ndarray,
    new: np.ndarray,
    fidelity: Fidelity,
    policy: GuardPolicy,
    trained: bool = False,
) -> list[str]:
    """What collapsed in ``new`` (outputs, first axis samples) against ``base``;
    ``trained``: the method trained the result (fine-tuning, distillation)."""
    reasons = []
    if np.isfinite(base).all() and not np.isfinite(new).all():
        reasons.append("its outputs have NaN/inf values")
    elif len(new) > 1 and _constant(new) and not _constant(base):
        what = "all zeros" if not np.any(new) else "constant"
        reasons.append(f"its output is {what} over the {len(new)} samples (the base's varies)")
    top1, drop = fidelity.top1_agreement, fidelity.accuracy_drop_pt
    if top1 is None:
        if fidelity.cosine is not None and fidelity.cosine < policy.min_cosine:
            reasons.append(f"cosine {fidelity.cosine:.3f} < {policy.min_cosine} against the base")
        return reasons
    if top1 < policy.min_top1:
        reasons.append(f"top-1 agreement {top1:.1%} < {policy.min_top1:.0%} with the base")
    if drop is not None and drop > policy.max_drop_pt:
        assert fidelity.accuracy is not None and fidelity.base_accuracy is not None
        reasons.append(
            f"accuracy {fidelity.base_accuracy:.1%} → {fidelity.accuracy:.1%} "
            f"(-{drop:.1f} pt > {policy.max_drop_pt:g})"
        )
    if trained:
        return reasons
    scale = float(np.mean(np.abs(base))) if base.size else 0.0
    if scale > 0 and fidelity.mean_abs_diff > policy.max_relative_error * scale:
        reasons.append(
            f"mean |Δ| {fidelity.mean_abs_diff:.3g} is {fidelity.mean_abs_diff / scale:.1f}× the "
            f"base's mean |output| {scale:.3g}"
        )
    if fidelity.cosine is not None and fidelity.cosine < policy.min_cosine:
        reasons.append(f"cosine {fidelity.cosine:.3f} < {policy.min_cosine} against the base")
    return reasons


def _constant(outputs: np.ndarray) -> bool:
    flat = outputs.reshape(len(outputs), -1)
    return bool(np.all(flat == flat[:1]))


def zeroed_layers(base: Any, new: Any) -> list[str]:
    """Weights of ``new``'s Conv/Gemm/MatMul nodes (ONNX) that are all zeros where the
    same-named weight of ``base`` was not."""
    from edgeship.models import onnx_graph

    before = onnx_graph.arrays(base)
    after = onnx_graph.arrays(new)
    return [
        name
        for name in onnx_graph.weight_names(new)
        if after[name].dtype.kind == "f"
        and not np.any(after[name])
        and name in before
        and np.any(before[name])
    ]


def hint(methods: Sequence[str]) -> str:
    """What to try, for the methods of a result (a chain: all of them)."""
    tips = list(dict.fromkeys(HINTS[m] for m in methods if m in HINTS))
    return "; ".join(tips) if tips else "other settings"


def collapse_message(method: str, reasons: Sequence[str], on: str, methods: Sequence[str]) -> str:
    return (
        f"{method} collapsed the model: {'; '.join(reasons)} (on {on}); try "
        f"{hint(methods)}; --allow-degraded keeps it anyway"
    )


def is_no_op(base_size: int, new_size: int, fidelity: Fidelity) -> bool:
    """Identical outputs at the same size (the ratio rounds to 1.000)."""
    same_size = round(new_size / base_size, 3) == 1.0 if base_size else new_size == 0
    return same_size and fidelity.max_abs_diff == 0.0


def larger_note(base_size: int, new_size: int) -> str | None:
    if new_size <= base_size:
        return None
    return (
        f"warning: the result is LARGER than its base ({new_size:,} vs {base_size:,} bytes, "
        f"{new_size / base_size:.3f}×)"
    )
