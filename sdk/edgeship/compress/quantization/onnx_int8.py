"""Quantization of ONNX models with ONNX Runtime's quantizer and onnxconverter-common.

* ``int8-dynamic``: weights INT8 (per channel by default), activations quantized at run time,
  inside ``If``/``Loop`` subgraphs too (ONNX Runtime's ``EnableSubgraph``; their weights are
  subgraph initializers once :mod:`.prepare` has folded their ``Constant`` nodes).
* ``int8-static``: QDQ format, INT8 weights (per channel) and UINT8 activations whose ranges
  come from calibration data (MinMax, Entropy or Percentile). The model is pre-processed
  (shape inference, basic graph optimisation) first, as ONNX Runtime recommends. ONNX
  Runtime calibrates the main graph only and leaves ``If``/``Loop`` branches as they are:
  their nodes get INT8 weights with float activations (weight-only, as the fallback's
  kept nodes: Silero VAD holds every weight in its branches); a model whose branches hold
  nothing to store so is refused, naming the node that holds them.
* ``fp16``: weights and compute in float16, inputs and outputs kept float32
  (:mod:`.onnx_fp16`).

A model stored with float16 weights is widened to float32 compute before INT8
(:func:`~edgeship.models.onnx_graph.widen_float16`): the quantizer takes float32 only.

INT8 that collapses an output runs the accuracy-aware fallback (:mod:`.fallback`): the nodes
it keeps out of quantization keep INT8 weights with float activations first
(:func:`~._weights.int8_weights`, weight-only), wholly float only when that does not hold.

The outcome lists which nodes were quantized, which were excluded and which stayed float
(``weight_only_nodes``: those with INT8 weights and float activations, the fallback's and
the branches').
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress._data import Dataset, require
from edgeship.compress.config import QuantizeConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.quantization import fallback
from edgeship.compress.quantization._weights import int8_weights
from edgeship.compress.quantization.fallback import Calls, Quantize
from edgeship.compress.quantization.onnx_fp16 import convert_fp16
from edgeship.core.errors import CompressionError, UnsupportedPattern, UsageError, cause_of
from edgeship.core.quiet import Shared
from edgeship.models import onnx_graph
from edgeship.models.onnx_graph import graphs, subgraphs

__all__ = [
    "CALIBRATION_BATCH",
    "ORT_DEFAULT_SEVERITY",
    "QDQ_OPSET",
    "SUBGRAPH_REFUSAL",
    "calibration_batch",
    "describe",
    "quantize_onnx",
]

CALIBRATION_BATCH = 32

BRANCH_NAMES = 4
"""How many of the branch nodes given INT8 weights a note names."""


def quantize_onnx(job: Job[QuantizeConfig]) -> Outcome:
    config = job.config
    if config.int8_io:
        raise UsageError("--int8-io is for TFLite static INT8; ONNX INT8 keeps float I/O (QDQ)")
    model = onnx_graph.load(job.base)
    _check_exclusions(model, config)
    with tempfile.TemporaryDirectory(prefix="edgeship-quant-") as tmp, _QUIET_ORT.held():
        if config.method == "fp16":
            return _fp16(model, job)
        return _int8_outcome(model, job, Path(tmp))


def _fp16(model: Any, job: Job[QuantizeConfig]) -> Outcome:
    config, out = job.config, job.out
    converted = convert_fp16(model, config, out, job.search)
    kept, half = converted.kept, converted.half_stored
    details = _what_changed(model, onnx_graph.load(out), config)
    if not details["quantized_nodes"]:
        _weights_in_subgraphs(model, config)
    notes: list[str] = []
    if kept:
        details["float_nodes"] = sorted(set(details["float_nodes"]) | set(kept))
        details["quantized_nodes"] = [n for n in details["quantized_nodes"] if n not in kept]
        notes.append(
            f"kept in float32 (activations or constants beyond float16's range, batch "
            f"Transposes feeding a MatMul, or types the converter could not reconcile): "
            f"{', '.join(kept)}"
        )
    if half:
        details["float16_stored_nodes"] = half
        notes.append(
            f"{len(half)} of the {len(kept)} nodes kept in float32 compute in float32 with "
            f"their weights stored float16 (cast in the graph): {', '.join(half)}"
        )
    return Outcome(details=details, notes=notes)


def _int8_outcome(model: Any, job: Job[QuantizeConfig], tmp: Path) -> Outcome:
    src, config, out = job.base, job.config, job.out
    notes: list[str] = []
    widened = onnx_graph.widen_float16(model)
    if widened:
        src = onnx_graph.save(model, tmp / "float32.onnx")
        notes.append(
            f"{widened} float16 weight(s) widened to float32 for INT8 (ONNX Runtime's "
            "quantizer takes float32)"
        )
    run = _int8(src, model, config, job.data, tmp)
    run.quantize(run.graph, (), out, None)
    details = _what_changed(model, onnx_graph.load(out), config)
    if not details["quantized_nodes"] and not run.branches:
        _weights_in_subgraphs(model, config)
    if config.fallback and job.search is not None:
        # by the names of the graph the quantizer saw (pre-processing fuses nodes)
        seen = _what_changed(onnx_graph.load(run.graph), onnx_graph.load(out), config)
        done = fallback.hold(
            run.graph, out, seen["quantized_nodes"], run.quantize, job.search, lighten=_weight_only
        )
        if done is not None:
            details = _after_fallback(model, out, config, done)
            notes.append(done.note)
    if run.branches:
        details["weight_only_nodes"] = [*details.get("weight_only_nodes", ()), *run.branches]
        notes.append(_branches_note(run.branches))
    return Outcome(details=details, notes=notes + list(dict.fromkeys(run.said)))


def _branches_note(names: Sequence[str]) -> str:
    shown = ", ".join(names[:BRANCH_NAMES]) + (", ..." if len(names) > BRANCH_NAMES else "")
    return (
        f"{len(names)} node(s) inside If/Loop branches, which static (QDQ) quantization does "
        f"not enter, have INT8 weights with float activations (weight-only, per channel): "
        f"{shown}"
    )


def _after_fallback(
    model: Any, out: Path, config: QuantizeConfig, done: fallback.Fallback
) -> dict[str, Any]:
    """The details of ``out`` once the fallback ran: what it keeps in float counts as
    excluded (when it held; else ``out`` is the fully quantized model)."""
    if done.held:
        config = replace(config, exclude_nodes=config.exclude_nodes + done.kept)
    details = _what_changed(model, onnx_graph.load(out), config)
    details["fallback"] = done.to_dict()
    details["weight_only_nodes"] = list(done.int8_weights)
    return details


def _weight_only(path: Path, kept: Sequence[str]) -> list[str]:
    """The fallback's kept nodes in the quantized model at ``path`` given INT8 weights
    with float activations, in place (:func:`~._weights.int8_weights`: per channel at
    opset 13 and up, per tensor at 10–12); the nodes that got them."""
    import onnx

    model = onnx_graph.load(path)
    done = int8_weights(model, kept)
    if done:  # unchecked: ONNX's checker refuses what ONNX Runtime's quantizer writes in
        onnx.save(model, str(path))  # subgraphs (com.microsoft ops without their opset)
    return done


SUBGRAPH_REFUSAL = {
    "int8-static": "the weights lie in its subgraphs, which static (QDQ) quantization does "
    "not enter (ONNX Runtime calibrates the main graph only); int8-dynamic does",
}


def _weights_in_subgraphs(model: Any, config: QuantizeConfig) -> None:
    """With no node quantized, refuse a model whose weights lie in an ``If``/``Loop``
    subgraph (the result would be a copy, often a smaller one after preparation, which
    the no-op guard would miss), naming that node."""
    nested = next((n for n in model.graph.node if any(g.node for g in subgraphs(n))), None)
    if nested is not None:
        why = SUBGRAPH_REFUSAL.get(
            config.method, "the weights lie in its subgraphs, where no node was quantized"
        )
        raise UnsupportedPattern(nested.name, nested.op_type, why)


def _nodes(model: Any) -> list[Any]:
    """The nodes of every graph of ``model``: the quantizer names nested ones too."""
    return [n for g in graphs(model.graph) for n in g.node]


def _check_exclusions(model: Any, config: QuantizeConfig) -> None:
    names = {n.name for n in _nodes(model)}
    unknown = [n for n in config.exclude_nodes if n not in names]
    if unknown:
        raise UsageError(f"excluded node(s) {unknown} are not in the model")


def _op_types(model: Any, config: QuantizeConfig, dynamic: bool) -> list[str] | None:
    """None (the quantizer's default set) unless op types are excluded."""
    if not config.exclude_op_types:
        return None
    from onnxruntime.quantization import registry

    known = (
        set(registry.IntegerOpsRegistry)
        if dynamic
        else set(registry.QLinearOpsRegistry) | set(registry.QDQRegistry)
    )
    return sorted(known - set(config.exclude_op_types))


def _preprocess(src: Path, dst: Path) -> None:
    """ONNX Runtime's pre-processing; where its symbolic shape inference fails (graphs
    with ``If``, dynamic ``Shape`` arithmetic), again without it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _inside(dst.parent):  # where a failed inference leaves its temporary files
            quant_pre_process(str(src.resolve()), str(dst.resolve()))
        return
    except Exception:  # symbolic shape inference raises plain Exceptions
        pass
    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception as exc:
        raise CompressionError(
            f"{src}: pre-processing for quantization failed: {describe(exc)}"
        ) from exc


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run the block with ``folder`` as the working directory: ONNX Runtime's symbolic
    shape inference writes ``sym_shape_infer_temp.onnx`` and its data to the working
    directory when it fails, which must not be the user's. One block at a time: the
    working directory is the process's, and two threads (a sweep quantizing two variants)
    that each saved and restored it would leave it in the other's deleted folder."""
    with _CWD:
        before = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(before)


_CWD = threading.Lock()


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (its first lines), never an empty string."""
    return cause_of(exc).text


QDQ_OPSET = 13
"""Per-channel QDQ needs DequantizeLinear's ``axis``: opset 13."""


def _opset13(src: Path, config: QuantizeConfig) -> Path:
    """``src`` converted to opset 13 in place when per-channel QDQ needs it (Paddle
    exports are opset 11/12)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not config.per_channel or opset >= QDQ_OPSET:
        return src
    try:
        converted = version_converter.convert_version(model, QDQ_OPSET)
    except Exception as exc:  # the converter lacks an adapter for some op
        raise CompressionError(
            f"per-channel INT8 needs opset {QDQ_OPSET}; converting from opset {opset} failed "
            f"({describe(exc)}): try --per-tensor"
        ) from exc
    onnx.save(converted, str(src))
    return src


def calibration_batch(model: Any, data: Dataset) -> tuple[int, bool]:
    """The batch calibration feeds ``model`` and whether the model fixes it: the first dim
    of its samples-first inputs when the graph fixes it (a batch-1 export takes one sample
    per call, never 32), else :data:`CALIBRATION_BATCH`."""
    firsts = {
        i.type.tensor_type.shape.dim[0].dim_value if i.type.tensor_type.shape.dim else 0
        for i in model.graph.input
        if i.name in data.feeds and i.name not in data.fixed
    }
    (first,) = firsts if len(firsts) == 1 else (0,)
    return (first, True) if first > 0 else (CALIBRATION_BATCH, False)


class _Reader:
    """Calibration batches for ONNX Runtime (its ``CalibrationDataReader`` protocol), at
    the model's own batch (:func:`calibration_batch`); with a fixed batch B, whole calls
    of B only."""

    def __init__(self, model: Any, data: Dataset, limit: int) -> None:
        size, fixed = calibration_batch(model, data)
        n = min(limit, len(data))
        n -= n % size if fixed else 0
        self._batches: Iterator[dict[str, Any]] = data.take(n).batches(size)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> dict[str, Any]:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch

    def set_range(self, start_index: int, end_index: int) -> None:  # pragma: no cover
        raise NotImplementedError


BIAS_ADJUSTMENT = "_adjust_weight_scale_for_int32_bias"
"""ONNX Runtime's step that widens a weight's per-channel scale so its bias fits int32; it
fails on a bias of more than one dimension (comparing an array as a truth value)."""


def _static(
    src: Path, config: QuantizeConfig, data: Dataset, out: Path, op_types: list[str] | None
) -> list[str]:
    """Static INT8 of ``src`` into ``out``; what it had to do differently (notes)."""
    try:
        _quantize_static(src, config, data, out, op_types, {})
        return []
    except ValueError as exc:
        functions = {frame.f_code.co_name for frame, _ in traceback.walk_tb(exc.__traceback__)}
        if BIAS_ADJUSTMENT not in functions:
            raise
    _quantize_static(src, config, data, out, op_types, {"QDQDisableWeightAdjustForInt32Bias": True})
    return [
        "ONNX Runtime's quantizer failed widening weight scales for their int32 biases (a bias "
        "of more than one dimension): quantized without that adjustment"
    ]


def _quantize_static(
    src: Path,
    config: QuantizeConfig,
    data: Dataset,
    out: Path,
    op_types: list[str] | None,
    options: dict[str, Any],
) -> None:
    from onnxruntime import quantization as q

    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    extra = {"CalibPercentile": config.percentile} if config.calibration == "percentile" else {}
    q.quantize_static(  # its errors: one line where compress runs a method
        str(src),
        str(out),
        _Reader(onnx_graph.load(src), data, config.calibration_samples),
        quant_format=q.QuantFormat.QDQ,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        calibrate_method=methods[config.calibration],
        op_types_to_quantize=op_types,
        nodes_to_exclude=list(config.exclude_nodes),
        extra_options={**extra, **options},
    )


@dataclass
class _Int8:
    """INT8 as a config says: ``quantize`` keeps some nodes in float
    (:data:`fallback.Quantize`); ``graph``: what it takes (pre-processed for static INT8);
    ``said``: the notes its quantizations add as they run; ``branches``: the nodes inside
    ``If``/``Loop`` branches its last static quantization of the whole model gave INT8
    weights (weight-only)."""

    quantize: Quantize
    graph: Path
    said: list[str] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)


def _int8(src: Path, model: Any, config: QuantizeConfig, data: Dataset | None, tmp: Path) -> _Int8:
    """INT8 of ``src`` (whose model is ``model``) as ``config`` says; a single-node model
    is calibrated on the calls it is given."""
    dynamic = config.method == "int8-dynamic"
    op_types = _op_types(model, config, dynamic)

    def quantize(graph: Path, kept: Sequence[str], out: Path, calls: Calls | None) -> None:
        settings = replace(config, exclude_nodes=config.exclude_nodes + tuple(kept))
        if dynamic:
            return _dynamic(graph, settings, out, op_types)
        if calls is None:
            calibration = require(data, config.needs_data() or "")
        else:
            calibration = Dataset({k: np.concatenate([c[k] for c in calls]) for k in calls[0]})
            graph = _opset13(graph, settings)
        run.said.extend(_static(graph, settings, calibration, out, op_types))
        if calls is None:  # the whole model, not one node the fallback ranks alone
            run.branches[:] = _weight_only(out, branches)

    if dynamic:
        return _Int8(quantize, src)
    _preprocess(src, tmp / "pre.onnx")
    run = _Int8(quantize, _opset13(tmp / "pre.onnx", config))
    # once: the fallback keeps main-graph nodes only, so every quantization has these
    branches = _branch_nodes(onnx_graph.load(run.graph), config)
    return run


def _branch_nodes(model: Any, config: QuantizeConfig) -> list[str]:
    """The nodes inside ``model``'s ``If``/``Loop`` branches that ``config`` does not
    exclude: static INT8 leaves them float."""
    skip = set(config.exclude_nodes)
    return [
        n.name
        for g in list(graphs(model.graph))[1:]
        for n in g.node
        if n.name not in skip and n.op_type not in config.exclude_op_types
    ]


def _dynamic(src: Path, config: QuantizeConfig, out: Path, op_types: list[str] | None) -> None:
    from onnxruntime import quantization as q

    q.quantize_dynamic(  # its errors: one line where compress runs a method
        str(src),
        str(out),
        weight_type=q.QuantType.QInt8,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        op_types_to_quantize=op_types,
        nodes_to_exclude=list(config.exclude_nodes),
        extra_options={"EnableSubgraph": True},
    )


def _what_changed(base: Any, new: Any, config: QuantizeConfig) -> dict[str, Any]:
    """Which base nodes now compute in reduced precision, by name.

    INT8: a node was replaced (QOperator: nodes named ``NAME_...`` in its place, or another
    op type under its name) or reads a DequantizeLinear output (QDQ). FP16: every node that
    neither the converter's op block list nor an exclusion kept float32. Nested graphs'
    nodes count too.
    """
    excluded = set(config.exclude_nodes)
    candidates = [
        n
        for n in _nodes(base)
        if n.name not in excluded and n.op_type not in config.exclude_op_types
    ]
    if config.method == "fp16":
        from onnxconverter_common import float16

        blocked = set(float16.DEFAULT_OP_BLOCK_LIST)
        quantized = [n.name for n in candidates if n.op_type not in blocked]
        kept = [n.name for n in candidates if n.op_type in blocked]
    else:
        by_name = {n.name: n for n in _nodes(new)}
        made_by = {out: n for n in _nodes(new) for out in n.output}

        def lowered(node: Any) -> bool:
            twin = by_name.get(node.name)
            if twin is None:  # replaced (ONNX Runtime derives the new names from it), or
                return any(n.startswith(f"{node.name}_") for n in by_name)  # optimised away
            return twin.op_type != node.op_type or any(
                i in made_by and made_by[i].op_type == "DequantizeLinear" for i in twin.input
            )

        quantized = [n.name for n in candidates if lowered(n)]
        kept = [n.name for n in candidates if not lowered(n)]
    return {
        "quantized_nodes": quantized,
        "float_nodes": kept,
        "excluded_nodes": list(config.exclude_nodes),
        "excluded_op_types": list(config.exclude_op_types),
        "format": {"int8-static": "QDQ", "int8-dynamic": "QOperator"}.get(config.method, "fp16"),
    }


def _mute_ort() -> int:
    """ONNX Runtime's quantizer logs advice through ``logging``, and its calibration
    sessions log a single-node model that fails (the fallback ranks it last) through
    ONNX Runtime's own logger: both off the user's screen; the root level before."""
    import onnxruntime as ort

    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(4)
    return level


def _unmute_ort(level: int) -> None:
    import onnxruntime as ort

    logging.root.setLevel(level)
    ort.set_default_logger_severity(ORT_DEFAULT_SEVERITY)


_QUIET_ORT = Shared(_mute_ort, _unmute_ort)


ORT_DEFAULT_SEVERITY = 2
"""ONNX Runtime's default logger severity (warnings); it has no getter to restore from."""
