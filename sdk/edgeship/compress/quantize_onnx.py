"""Quantization of ONNX models with ONNX Runtime's quantizer and onnxconverter-common.

* ``int8-dynamic``: weights INT8 (per channel by default), activations quantized at run time,
  inside ``If``/``Loop`` subgraphs too (ONNX Runtime's ``EnableSubgraph``; their weights are
  subgraph initializers once :mod:`.prepare` has folded their ``Constant`` nodes).
* ``int8-static``: QDQ format, INT8 weights (per channel) and UINT8 activations whose ranges
  come from calibration data (MinMax, Entropy or Percentile). The model is pre-processed
  (shape inference, basic graph optimisation) first, as ONNX Runtime recommends. ONNX
  Runtime calibrates the main graph only: a model whose weights all lie in subgraphs is
  refused, naming the node that holds them.
* ``fp16``: weights and compute in float16, inputs and outputs kept float32. Nodes with a
  float constant outside float16's range (a BatchNorm variance of 1e8, as Paddle exports
  have) stay float32, instead of having it clamped. Float32 inputs that subgraphs read
  from the outer scope are cast for them (the converter casts them for top-level nodes
  only, which leaves an ``If`` branch mixing float32 and float16). A ``Transpose`` that
  moves the leading axis behind the other batch axes and feeds a ``MatMul`` (the
  ``[1, 0, 2]`` that a batch-first ``nn.MultiheadAttention`` export starts with) stays
  float32 too, else ONNX Runtime crashes loading the model: see :func:`batch_transposes`.

The outcome lists which nodes were quantized, which were excluded and which stayed float.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..extras import import_optional
from . import fallback, onnx_graph
from .config import QuantizeConfig
from .data import Dataset, require
from .errors import CompressionError, UnsupportedPattern
from .fallback import Calls, Quantize
from .methods import Job, Outcome
from .onnx_graph import graphs, subgraphs

CALIBRATION_BATCH = 32


def quantize_onnx(job: Job[QuantizeConfig]) -> Outcome:
    src, config, data, out = job.base, job.config, job.data, job.out
    model = onnx_graph.load(src)
    _check_exclusions(model, config)
    kept: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgeship-quant-") as tmp, _quiet_ort():
        if config.method == "fp16":
            kept = _fp16(model, config, out)
        else:
            quantize, graph = _int8(src, model, config, data, Path(tmp))
            quantize(graph, (), out, None)
        details = _what_changed(model, onnx_graph.load(out), config)
        if not details["quantized_nodes"]:
            _weights_in_subgraphs(model, config, out)
        if config.method != "fp16" and config.fallback and job.search is not None:
            # by the names of the graph the quantizer saw (pre-processing fuses nodes)
            seen = _what_changed(onnx_graph.load(graph), onnx_graph.load(out), config)
            done = fallback.hold(graph, out, seen["quantized_nodes"], quantize, job.search)
            if done is not None:
                details = _after_fallback(model, out, config, done)
                notes.append(done.note)
    if kept:
        details["float_nodes"] = sorted(set(details["float_nodes"]) | set(kept))
        details["quantized_nodes"] = [n for n in details["quantized_nodes"] if n not in kept]
        notes.append(
            f"kept in float32 (constants beyond float16's range, batch Transposes feeding "
            f"a MatMul, or types the converter could not reconcile): {', '.join(kept)}"
        )
    return Outcome(details=details, notes=notes)


def _after_fallback(
    model: Any, out: Path, config: QuantizeConfig, done: fallback.Fallback
) -> dict[str, Any]:
    """The details of ``out`` once the fallback ran: what it keeps in float counts as
    excluded (when it held; else ``out`` is the fully quantized model)."""
    if done.held:
        config = replace(config, exclude_nodes=config.exclude_nodes + done.kept)
    details = _what_changed(model, onnx_graph.load(out), config)
    details["fallback"] = done.to_dict()
    return details


SUBGRAPH_REFUSAL = {
    "int8-static": "the weights lie in its subgraphs, which static (QDQ) quantization does "
    "not enter (ONNX Runtime calibrates the main graph only); int8-dynamic does",
}


def _weights_in_subgraphs(model: Any, config: QuantizeConfig, out: Path) -> None:
    """With no node quantized, refuse a model whose weights lie in an ``If``/``Loop``
    subgraph (the result would be a copy, often a smaller one after preparation, which
    the no-op guard would miss), naming that node; the copy at ``out`` is removed."""
    nested = next((n for n in model.graph.node if any(g.node for g in subgraphs(n))), None)
    if nested is not None:
        out.unlink(missing_ok=True)
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
    directory when it fails, which must not be the user's."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception, never an empty string."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


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


class _Reader:
    """Calibration batches for ONNX Runtime (its ``CalibrationDataReader`` protocol)."""

    def __init__(self, data: Dataset, limit: int) -> None:
        self._batches: Iterator[dict[str, Any]] = data.take(limit).batches(CALIBRATION_BATCH)

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


def _static(
    src: Path, config: QuantizeConfig, data: Dataset, out: Path, op_types: list[str] | None
) -> None:
    from onnxruntime import quantization as q

    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    extra = {"CalibPercentile": config.percentile} if config.calibration == "percentile" else {}
    try:
        q.quantize_static(
            str(src),
            str(out),
            _Reader(data, config.calibration_samples),
            quant_format=q.QuantFormat.QDQ,
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[config.calibration],
            op_types_to_quantize=op_types,
            nodes_to_exclude=list(config.exclude_nodes),
            extra_options=extra,
        )
    except Exception as exc:  # onnxruntime raises untyped errors
        raise CompressionError(f"static INT8 quantization failed: {describe(exc)}") from exc


def _int8(
    src: Path, model: Any, config: QuantizeConfig, data: Dataset | None, tmp: Path
) -> tuple[Quantize, Path]:
    """INT8 as ``config`` says, keeping some nodes in float (:data:`fallback.Quantize`; a
    single-node model is calibrated on the calls it is given), and the graph it takes:
    ``src``, pre-processed for static INT8."""
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
        _static(graph, settings, calibration, out, op_types)

    if dynamic:
        return quantize, src
    pre = tmp / "pre.onnx"
    _preprocess(src, pre)
    return quantize, _opset13(pre, config)


def _dynamic(src: Path, config: QuantizeConfig, out: Path, op_types: list[str] | None) -> None:
    from onnxruntime import quantization as q

    try:
        q.quantize_dynamic(
            str(src),
            str(out),
            weight_type=q.QuantType.QInt8,
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            op_types_to_quantize=op_types,
            nodes_to_exclude=list(config.exclude_nodes),
            extra_options={"EnableSubgraph": True},
        )
    except Exception as exc:
        raise CompressionError(f"dynamic INT8 quantization failed: {describe(exc)}") from exc


def _fp16(model: Any, config: QuantizeConfig, out: Path) -> list[str]:
    float16 = import_optional("onnxconverter_common.float16", "fp16")
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(config.exclude_op_types)
    nodes = list(config.exclude_nodes) + out_of_range_nodes(model)
    nodes += [n for n in batch_transposes(model) if n not in nodes]
    for _ in range(FP16_RETRIES):
        converted = _convert_fp16(float16, model, block, nodes)
        rejected = _rejected_node(converted)
        if rejected is None or rejected in nodes:
            break
        nodes.append(rejected)  # a type the converter could not reconcile: keep it float32
    onnx_graph.save(converted, out)
    return [n for n in nodes if n not in config.exclude_nodes]


FP16_RETRIES = 16
"""Nodes that ONNX Runtime's type check rejects after conversion, kept float32 one by one."""


def _convert_fp16(float16: Any, model: Any, block: list[str], nodes: list[str]) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="onnxconverter_common")
        converted = float16.convert_float_to_float16(
            copy,
            max_finite_val=FP16_MAX,
            keep_io_types=True,
            op_block_list=block,
            node_block_list=nodes,
        )
    for graph in graphs(converted.graph):  # stale float32 entries beside inserted Casts
        del graph.value_info[:]
    _cast_outer_inputs(converted)
    _input_casts_first(converted.graph)
    return converted


def _input_casts_first(graph: Any) -> None:
    """Move the Casts of graph inputs to the top: the converter leaves the one it inserts
    for a top-level consumer at that consumer, which may come after an ``If`` whose
    branches it pointed to the cast too (ONNX's type inference then rejects the ``If``)."""
    inputs = {i.name for i in graph.input}
    first = [n for n in graph.node if n.op_type == "Cast" and n.input[0] in inputs]
    if not first:
        return
    rest = [n for n in graph.node if not (n.op_type == "Cast" and n.input[0] in inputs)]
    del graph.node[:]
    graph.node.extend(first + rest)


def _cast_outer_inputs(model: Any) -> None:
    """Give subgraph nodes that read a float32 graph input from the outer scope a float16
    copy, cast at the top of the main graph: the converter converts subgraphs whole but
    casts kept-float32 inputs for top-level consumers only."""
    from onnx import TensorProto, helper

    kept = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    renamed: dict[str, str] = {}
    for node in model.graph.node:
        for sub in subgraphs(node):
            _rename_reads(sub, kept, renamed)
    for name, half in reversed(renamed.items()):
        cast = helper.make_node("Cast", [name], [half], name=half, to=TensorProto.FLOAT16)
        model.graph.node.insert(0, cast)


def _rename_reads(graph: Any, names: set[str], renamed: dict[str, str]) -> None:
    """Point reads of ``names`` in ``graph`` and below to their float16 copies (recorded
    in ``renamed``); a name the graph declares itself shadows the outer one."""
    own = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    own |= {o for n in graph.node for o in n.output}
    visible = names - own
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in visible:
                node.input[k] = renamed.setdefault(name, f"{name}_fp16_outer")
        for sub in subgraphs(node):
            _rename_reads(sub, visible, renamed)


_NODE_IN_ERROR = re.compile(r"node name: ([^)]+)\)")


def _rejected_node(model: Any) -> str | None:
    """The node ONNX's strict type inference names when it finds a type mismatch in
    ``model``, else None (ONNX Runtime itself is not asked: a malformed graph can crash
    it)."""
    from onnx import shape_inference

    try:
        shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # InferenceError, ValidationError
        found = _NODE_IN_ERROR.search(str(exc))
        return found.group(1).strip() if found else None
    return None


FP16_MAX = 65504.0
"""The largest finite float16."""


def out_of_range_nodes(model: Any) -> list[str]:
    """Names of nodes reading a float initializer with a finite value beyond float16's
    range (kept float32 by the conversion); unnamed such nodes are given a name."""
    import numpy as np
    from onnx import numpy_helper

    names = []
    for graph in graphs(model.graph):
        values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        wide = {
            name
            for name, v in values.items()
            if v.dtype.kind == "f" and v.size and float(np.max(np.abs(v))) > FP16_MAX
        }
        for i, node in enumerate(graph.node):
            if wide.intersection(node.input):
                if not node.name:
                    node.name = f"{node.op_type}_{i}_fp32"
                names.append(node.name)
    return names


MATMULS = frozenset({"MatMul", "FusedMatMul"})


def batch_transposes(model: Any) -> list[str]:
    """Names of ``Transpose`` nodes to keep float32: those whose ``perm`` moves the leading
    axis behind the other batch axes (``[1, …, r-2, 0, r-1]`` or ``[1, …, r-1, 0]``, rank 3
    or more) and whose output reaches a ``MatMul`` directly or through ``Cast`` nodes;
    unnamed such nodes are given a name.

    Why: ONNX Runtime's CPU provider (x86) has no float16 ``MatMul`` kernel, so at session
    creation it casts the float16 ``Transpose`` output to float32 for the ``MatMul``; its
    ``MatmulTransposeFusion`` then swaps that ``Cast`` with a ``Transpose`` of this form
    (FusedMatMul's ``transBatch`` layout), does not fuse, and leaves a graph on which the
    next transformer (``NchwcTransformer``, level ``ORT_ENABLE_ALL``) segfaults:
    onnxruntime 1.32, and a float32 ``Transpose → Cast → MatMul`` crashes it too. Kept
    float32, the ``Transpose`` is cast before it, and no single ``Cast`` separates it from
    the ``MatMul``.
    """
    names = []
    for graph in graphs(model.graph):
        readers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        for i, node in enumerate(graph.node):
            if (
                node.op_type == "Transpose"
                and _moves_batch(node)
                and _reaches_matmul(node, readers)
            ):
                if not node.name:
                    node.name = f"Transpose_{i}_fp32"
                names.append(node.name)
    return names


def _moves_batch(transpose: Any) -> bool:
    """Whether ``transpose``'s ``perm`` is one of FusedMatMul's ``transBatch`` layouts."""
    perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), [])
    rank = len(perm)
    lead = list(range(1, rank - 1))
    return rank >= 3 and perm in ([*lead, 0, rank - 1], [*lead, rank - 1, 0])


def _reaches_matmul(node: Any, readers: dict[str, list[Any]]) -> bool:
    """Whether a ``MatMul`` reads ``node``'s output directly or through ``Cast`` nodes."""
    nexts = [r for out in node.output for r in readers.get(out, [])]
    return any(
        r.op_type in MATMULS or (r.op_type == "Cast" and _reaches_matmul(r, readers)) for r in nexts
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


class _quiet_ort:
    """ONNX Runtime's quantizer logs advice through ``logging``, and its calibration
    sessions log a single-node model that fails (the fallback ranks it last) through
    ONNX Runtime's own logger; keep both off the user's screen."""

    def __enter__(self) -> None:
        import onnxruntime as ort

        self._level = logging.root.level
        logging.root.setLevel(logging.ERROR)
        ort.set_default_logger_severity(4)

    def __exit__(self, *exc: object) -> None:
        import onnxruntime as ort

        logging.root.setLevel(self._level)
        ort.set_default_logger_severity(ORT_DEFAULT_SEVERITY)


ORT_DEFAULT_SEVERITY = 2
"""ONNX Runtime's default logger severity (warnings); it has no getter to restore from."""
