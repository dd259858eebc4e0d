"""Verified equivalence: run source and result on the same inputs and compare outputs.

Both models run one sample per call (or the source's fixed batch), as a device runs
them, and each call's outputs are compared shape for shape: an output whose size depends
on the call (detections after NMS, a reduction over the batch) is never judged by
concatenated batches. Every output is judged for what it is (its kind,
:mod:`edgeship.models.kinds`), a packed detection head part by part (boxes in pixels and
scores in [0, 1] each against a tolerance in their own units). Three figures per output
or part (from :mod:`edgeship.models.fidelity`): the largest absolute difference, the
cosine similarity of the flattened tensors, and, for class scores only, top-1 agreement
(the share of rows whose arg-max over the last axis is the same); with them, the figures
of its kind and what collapsed by its kind's rules (a constant or all-zero output where
the source's varies, whatever the tolerance says).
A result passes when every output is within :class:`Tolerance` and none collapsed;
otherwise the caller fails loudly unless told to keep it (``--force``). Every input and
output whose dtype or shape changed (TFLite takes int64 ids as int32) is listed in
``interface``, as compress lists them, never silent.

ONNX and TFLite models are run through the edgeship runtime on a target (local by
default), so what is verified is what ships; PyTorch sources run in this process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgeship.models.align import align_inputs, align_outputs, match_names
from edgeship.models.estimate import Interval, share_interval, share_text
from edgeship.models.fidelity import cosine_similarity, max_abs_diff
from edgeship.models.interface import InterfaceChange, interface_changes
from edgeship.models.kinds import OutputVerdict, judge, packed_axis, split_packed
from edgeship.models.runners import Runner
from edgeship_runtime.errors import UsageError
from edgeship_runtime.inputs import (
    LABELS_KEY,
    batch_symbols,
    load_arrays,
    per_call_inputs,
    random_array,
    resolve_shape,
)
from edgeship_runtime.serde import from_jsonable, to_jsonable
from edgeship_runtime.signature import Signature, TensorSpec

__all__ = [
    "VERIFY_SCHEMA",
    "OutputComparison",
    "Tolerance",
    "VerifyData",
    "VerifyReport",
    "compare_output",
    "failure_message",
    "verification_feeds",
    "verify",
]

VERIFY_SCHEMA = "edgeship.verify/1.1"
"""1.1 added each output's ``rows`` and the Wilson interval of its top-1 agreement."""


@dataclass(frozen=True)
class Tolerance:
    """When a result counts as equivalent.

    ``max_abs`` ≤ ``atol + rtol * max|reference|`` (absolute units of the output);
    cosine similarity ≥ ``min_cosine``; top-1 agreement ≥ ``min_top1`` (a fraction).
    The defaults suit float32 conversions; loosen them for quantized results.
    """

    atol: float = 1e-4
    rtol: float = 1e-3
    min_cosine: float = 0.9999
    min_top1: float = 0.99

    def __post_init__(self) -> None:
        if self.atol < 0 or self.rtol < 0:
            raise UsageError(f"tolerances must be >= 0, got atol={self.atol} rtol={self.rtol}")
        for name in ("min_cosine", "min_top1"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise UsageError(f"{name} must lie in [-1, 1], got {value}")

    def max_abs_allowed(self, reference: np.ndarray) -> float:
        scale = float(np.max(np.abs(reference))) if reference.size else 0.0
        return self.atol + self.rtol * scale


@dataclass(frozen=True)
class VerifyData:
    """Which inputs to compare on: ``data`` (.npz by input name, ``labels`` ignored, or
    .npy for a single input) or ``samples`` rows of inputs generated with ``seed``, at
    ``shapes`` (by input name; the batch dim is ``samples``) where a dim is dynamic: a
    dynamic dim that is not a batch dim is never guessed.
    ``samples`` also caps how many rows of ``data`` are used (0: all)."""

    data: Path | None = None
    samples: int = 32
    seed: int = 0
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.samples < 0:
            raise UsageError(f"samples must be >= 0, got {self.samples}")
        if self.data is None and self.samples == 0:
            raise UsageError("generated verification inputs need samples >= 1")

    def describe(self) -> str:
        return str(self.data) if self.data is not None else f"generated (seed {self.seed})"


@dataclass
class OutputComparison:
    """One output (or one ``part`` of a packed one): ``name`` in the source,
    ``result_name`` in the converted model; its ``kind``, the figures of that kind
    (``figures``) and what collapsed by its rules (``reasons``)."""

    name: str
    result_name: str
    shape: list[int]
    max_abs_diff: float
    max_abs_allowed: float
    cosine: float
    top1_agreement: float | None
    passed: bool
    note: str = ""
    kind: str = ""
    part: str = ""
    figures: dict[str, float | None] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    top1_agreement_ci: Optional[Interval] = None  # noqa: UP045 (serde reads Optional)
    rows: int = 0

    def agreement_text(self) -> str:
        """``100 % [89.3, 100] n=32`` (``-``: not class scores)."""
        if self.top1_agreement is None:
            return "-"
        return share_text(self.top1_agreement, self.rows, self.top1_agreement_ci)

    @property
    def label(self) -> str:
        return f"{self.name!r}" + (f" ({self.part})" if self.part else "")


@dataclass
class VerifyReport:
    samples: int
    data: str
    tolerance: dict[str, float]
    outputs: list[OutputComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: bool = True
    schema: str = VERIFY_SCHEMA
    interface: list[InterfaceChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyReport:
        return from_jsonable(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def worst(self) -> OutputComparison | None:
        failing = [o for o in self.outputs if not o.passed]
        return failing[0] if failing else None

    def summary(self) -> str:
        """``max|Δ| 1.2e-06, cosine 1.000000, top-1 agreement 100 % [89.3, 100] n=32 on 32
        samples``."""
        if not self.outputs:
            return "no outputs compared"
        diff = max(o.max_abs_diff for o in self.outputs)
        cos = min(o.cosine for o in self.outputs)
        tops = [o for o in self.outputs if o.top1_agreement is not None]
        worst = min(tops, key=lambda o: o.top1_agreement or 0.0, default=None)
        top = "" if worst is None else f", top-1 agreement {worst.agreement_text()}"
        return f"max|Δ| {diff:.3g}, cosine {cos:.6f}{top} on {self.samples} samples"


# ---------------------------------------------------------------------------- compare


def compare_output(
    name: str,
    result_name: str,
    ref: np.ndarray,
    got: np.ndarray,
    tolerance: Tolerance,
    kind: str | None = None,
) -> list[OutputComparison]:
    """Output ``name`` of the result against the source's (first axis: samples), judged
    as ``kind`` (None: inferred from its name, shape and values): one comparison, or one
    per part of a packed detection head."""
    if ref.shape != got.shape:
        note = f"shape {list(got.shape)} differs from the source's {list(ref.shape)}"
        return [_unequal(name, result_name, ref, note)]
    judged = bool(ref.ndim) and bool(np.isfinite(ref).all() and np.isfinite(got).all())
    verdicts = judge(name, ref, got, kind) if judged else []
    if len(verdicts) == 1 or not verdicts:
        return [_compare(name, result_name, ref, got, tolerance, verdicts[:1])]
    axis = packed_axis(ref)
    assert axis is not None
    (ref_boxes, ref_scores), (got_boxes, got_scores) = (
        split_packed(ref, axis),
        split_packed(got, axis),
    )
    boxes, scores, found = verdicts
    scores.metrics.update(found.metrics)  # the task figures go with the scores
    scores.reasons += found.reasons
    return [
        _compare(name, result_name, ref_boxes, got_boxes, tolerance, [boxes]),
        _compare(name, result_name, ref_scores, got_scores, tolerance, [scores]),
    ]


def _unequal(name: str, result_name: str, ref: np.ndarray, note: str) -> OutputComparison:
    inf = float("inf")
    return OutputComparison(name, result_name, list(ref.shape), inf, 0.0, 0.0, None, False, note)


def _compare(
    name: str,
    result_name: str,
    ref: np.ndarray,
    got: np.ndarray,
    tolerance: Tolerance,
    verdict: list[OutputVerdict],
) -> OutputComparison:
    """The tolerance's figures of one output or part, with its kind's ``verdict`` (none
    for a tensor that is not finite or not samples-first)."""
    finite = np.isfinite(ref) & np.isfinite(got)
    same_pattern = bool(np.array_equal(np.isfinite(ref), np.isfinite(got)))
    diff = max_abs_diff(ref[finite], got[finite])
    allowed = tolerance.max_abs_allowed(ref[finite])
    cos = cosine_similarity(ref[finite], got[finite])
    judged = verdict[0] if verdict else None
    scores = judged is not None and judged.kind == "scores"
    top1 = judged.metrics.get("top1_agreement") if judged is not None and scores else None
    reasons = list(judged.reasons) if judged is not None else []
    rows = int(ref.shape[0]) if ref.ndim else 1
    passed = (
        same_pattern
        and diff <= allowed
        and cos >= tolerance.min_cosine
        and (top1 is None or top1 >= tolerance.min_top1)
        and not reasons
    )
    return OutputComparison(
        name,
        result_name,
        list(ref.shape),
        diff,
        allowed,
        cos,
        top1,
        passed,
        kind=judged.kind if judged is not None else "",
        part=judged.part if judged is not None else "",
        figures=dict(judged.metrics) if judged is not None else {},
        reasons=reasons,
        top1_agreement_ci=share_interval(top1, rows),
        rows=rows,
    )


# ---------------------------------------------------------------------------- inputs


def verification_feeds(signature: Signature, spec: VerifyData) -> dict[str, np.ndarray]:
    """The inputs both models see, shaped for ``signature`` (the source's)."""
    if spec.data is not None:
        return _feeds_from_file(signature, spec)
    rng = np.random.default_rng(spec.seed)
    batch = batch_symbols(signature)
    return {
        s.name: _generate(rng, s, spec.samples, spec.shapes.get(s.name), batch)
        for s in signature.inputs
    }


def _feeds_from_file(signature: Signature, spec: VerifyData) -> dict[str, np.ndarray]:
    arrays = {k: v for k, v in load_arrays(str(spec.data)).items() if k != LABELS_KEY}
    names = [s.name for s in signature.inputs]
    if set(arrays) == {""} or (len(arrays) == 1 and len(names) == 1 and names[0] not in arrays):
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UsageError(
            f"{spec.data}: no array for input(s) {missing} (it holds {sorted(arrays)})"
        )
    feeds = {n: arrays[n] for n in names}
    if spec.samples:
        feeds = {n: a[: spec.samples] if a.ndim else a for n, a in feeds.items()}
    for s in signature.inputs:
        if feeds[s.name].dtype.name != s.dtype and s.dtype != "str":
            feeds[s.name] = feeds[s.name].astype(s.dtype)
    return feeds


def _generate(
    rng: np.random.Generator,
    spec: TensorSpec,
    samples: int,
    override: tuple[int, ...] | None,
    batch: set[str],
) -> np.ndarray:
    shape = resolve_shape(spec, override, batch, batch_size=samples)
    if shape and _is_batch_axis(spec):
        shape[0] = samples
    return random_array(rng, spec, shape)


def _is_batch_axis(spec: TensorSpec) -> bool:
    """Axis 0 is a batch axis when it is dynamic or 1 (then more rows are made by chunks)."""
    first = spec.shape[0]
    return not isinstance(first, int) or first < 0 or first == 1


# ---------------------------------------------------------------------------- verify


def verify(
    source: Runner,
    result: Runner,
    data: VerifyData | None = None,
    tolerance: Tolerance | None = None,
) -> VerifyReport:
    """Run both on the same inputs, one sample per call (or the source's fixed batch),
    and compare every output of the source, call by call (see the module)."""
    data = data or VerifyData()
    tolerance = tolerance or Tolerance()
    feeds = verification_feeds(source.signature, data)
    report = VerifyReport(
        samples=_rows(feeds),
        data=data.describe(),
        tolerance=to_jsonable(tolerance),
        interface=interface_changes(source.signature, result.signature),
    )
    source_outputs = [s.name for s in source.signature.outputs]
    pairs = match_names(source_outputs, [s.name for s in result.signature.outputs], "output")
    calls: list[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]] = []
    for call in _calls(source.signature, feeds):
        result_feeds, notes = align_inputs(call, source.signature, result.signature)
        reference = source.run(call)
        aligned, out_notes = align_outputs(reference, result.run(result_feeds), pairs)
        report.notes += [n for n in notes + out_notes if n not in report.notes]
        calls.append((reference, aligned))
    for name, result_name in pairs:
        refs = [ref[name] for ref, _ in calls]
        gots = [got[name] for _, got in calls]
        shaped = enumerate(zip(refs, gots, strict=True))
        odd = next((i for i, (r, g) in shaped if r.shape != g.shape), None)
        if odd is not None:
            note = (
                f"sample {odd}: shape {list(gots[odd].shape)} differs from the source's "
                f"{list(refs[odd].shape)}"
            )
            report.outputs.append(_unequal(name, result_name, refs[odd], note))
            continue
        report.outputs += compare_output(name, result_name, _pooled(refs), _pooled(gots), tolerance)
    report.passed = all(o.passed for o in report.outputs)
    return report


def failure_message(report: VerifyReport, what: str) -> str:
    """One line saying which output failed which check, for the ``error:`` line."""
    worst = report.worst()
    if worst is None:
        return f"{what}: verification passed"
    if worst.note:
        return f"{what}: output {worst.label}: {worst.note}"
    parts = []
    if worst.max_abs_diff > worst.max_abs_allowed:
        parts.append(f"max|Δ| {worst.max_abs_diff:.3g} > {worst.max_abs_allowed:.3g}")
    min_cos = report.tolerance.get("min_cosine", 1.0)
    if worst.cosine < min_cos:
        parts.append(f"cosine {worst.cosine:.6f} < {min_cos}")
    min_top = report.tolerance.get("min_top1", 1.0)
    if worst.top1_agreement is not None and worst.top1_agreement < min_top:
        parts.append(f"top-1 agreement {100 * worst.top1_agreement:.1f}% < {100 * min_top:.1f}%")
    parts += worst.reasons
    detail = "; ".join(parts) or "non-finite values"
    kind = f" [{worst.kind}]" if worst.kind else ""
    return (
        f"{what} is not equivalent to its source: output {worst.label}{kind}: {detail} "
        f"on {report.samples} samples (--force keeps it anyway)"
    )


def _calls(signature: Signature, feeds: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """``feeds`` as calls of one sample each, or of the model's fixed batch; the inputs a
    model takes once per call (:func:`~edgeship_runtime.inputs.per_call_inputs`) go whole
    into every call."""
    whole = per_call_inputs(signature, feeds)
    rows = [a for n, a in feeds.items() if n not in whole and a.ndim]
    if not rows:
        return [dict(feeds)]
    fixed = {s.shape[0] for s in signature.inputs if s.name not in whole and s.shape}
    (first,) = fixed if len(fixed) == 1 else (None,)
    size = first if isinstance(first, int) and first > 1 else 1
    return [
        {n: a if n in whole or not a.ndim else a[i : i + size] for n, a in feeds.items()}
        for i in range(0, len(rows[0]), size)
    ]


def _pooled(calls: list[np.ndarray]) -> np.ndarray:
    """One output over every call: stacked along the samples axis, or flattened and
    joined when its shape depends on the call."""
    if len({c.shape for c in calls}) == 1:
        return np.concatenate(calls) if calls[0].ndim else np.stack(calls)
    return np.concatenate([c.reshape(-1) for c in calls])


def _rows(feeds: Mapping[str, np.ndarray]) -> int:
    shapes = [a.shape for a in feeds.values() if a.ndim]
    return int(shapes[0][0]) if shapes else 1
