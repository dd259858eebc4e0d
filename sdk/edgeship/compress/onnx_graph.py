"""Small helpers over ONNX graphs: initializers as arrays, who consumes what, saving safely,
and what a model file holds (size, parameters, zeros) for the record."""

from __future__ import annotations

import os
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship_runtime.formats import detect_format

from edgeship.core.errors import CompressionError, NothingToPrune
from edgeship.compress.report import ModelStats

WEIGHT_OPS = {"Conv": 1, "Gemm": 1, "MatMul": 1}
"""Op type → input index of the weight whose elements pruning removes."""

_QPARAM_INPUTS = {
    "QuantizeLinear": (1, 2),
    "DequantizeLinear": (1, 2),
    "DynamicQuantizeLinear": (),
    "MatMulInteger": (2, 3),
    "ConvInteger": (2, 3),
    "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7),
}
"""Inputs that hold quantization scales/zero points: bookkeeping, not parameters."""


def load(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise CompressionError(f"{path}: not a readable ONNX model ({exc})") from exc


def save(model: Any, path: Path) -> Path:
    """Check, then write atomically (a failed save leaves no half file at ``path``)."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise CompressionError(f"the compressed graph is not valid ONNX: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    return path


def arrays(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def set_array(model: Any, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, name))
            return
    raise KeyError(name)


def consumers(model: Any) -> dict[str, list[Any]]:
    return readers(model.graph)


def readers(graph: Any) -> dict[str, list[Any]]:
    """Tensor name → the nodes of ``graph`` (one graph, not its subgraphs) that read it."""
    out: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                out[name].append(node)
    return out


def producers(model: Any) -> dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def node_label(node: Any) -> str:
    return node.name or f"{node.op_type}->{node.output[0]}"


def weight_names(model: Any) -> list[str]:
    """Initializers used as the weight of a Conv/Gemm/MatMul, in graph order, once each."""
    inits = {t.name for t in model.graph.initializer}
    seen: list[str] = []
    for node in model.graph.node:
        idx = WEIGHT_OPS.get(node.op_type)
        if idx is not None and len(node.input) > idx and node.input[idx] in inits:
            name = node.input[idx]
            if name not in seen and len(_dims(model, name)) >= 2:
                seen.append(name)
    return seen


def prunable_weights(model: Any) -> list[str]:
    """:func:`weight_names`, or :class:`NothingToPrune` naming the ops a main graph has
    instead (Silero's weights lie in ``If`` branches)."""
    names = weight_names(model)
    if not names:
        ops = sorted({n.op_type for n in model.graph.node})
        raise NothingToPrune({"model": f"no Conv/Gemm/MatMul weight initializers (ops: {ops})"})
    return names


def _dims(model: Any, name: str) -> list[int]:
    return next(list(t.dims) for t in model.graph.initializer if t.name == name)


def count_parameters(model: Any) -> tuple[int, int]:
    """(parameters, non-zero parameters) of an ONNX model: the learned initializers and
    the float tensors of ``Constant`` nodes (weights, in some exporters) of every graph,
    those nested in ``If``/``Loop`` nodes too (Silero keeps all its weights there; a
    weight copied into two branches counts twice, as the file holds it twice)."""
    learned = _learned_values(model)
    total = sum(int(v.size) for v in learned)
    nonzero = sum(int(np.count_nonzero(v)) for v in learned)
    return total, nonzero


def _learned_values(model: Any) -> list[np.ndarray]:
    """Initializers that are learned values (not shapes/axes, int64, nor quantization
    parameters) and float ``Constant`` tensors, of all graphs."""
    from onnx import TensorProto, helper, numpy_helper

    nested = list(graphs(model.graph))
    nodes = [node for g in nested for node in g.node]
    skip = {
        node.input[idx]
        for node in nodes
        for idx in _QPARAM_INPUTS.get(node.op_type, ())
        if idx < len(node.input)
    }
    out = [
        numpy_helper.to_array(t)
        for g in nested
        for t in g.initializer
        if t.name not in skip and t.data_type != TensorProto.INT64
    ]
    for node in nodes:
        if node.op_type == "Constant" and len(node.attribute) == 1:
            attr = node.attribute[0]
            if attr.name == "value":
                value = numpy_helper.to_array(helper.get_attribute_value(attr))
                if value.dtype.kind == "f":
                    out.append(value)
    return out


def subgraphs(node: Any) -> list[Any]:
    """The graphs a node holds (``If`` branches, ``Loop``/``Scan`` bodies)."""
    found = [attr.g for attr in node.attribute if attr.HasField("g")]
    return found + [g for attr in node.attribute for g in attr.graphs]


def graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every graph nested in it, depth first."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from graphs(sub)


def _tflite_parameters(path: Path) -> tuple[int, int]:
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(path)
    total = nonzero = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = tfl.get_tensor_data(tensor, model.buffers)
            if data is None or (data.dtype.kind in "iu" and data.ndim <= 1 and data.size <= 8):
                continue  # no buffer, or a shape/axis constant
            total += int(data.size)
            nonzero += int(np.count_nonzero(data))
    return total, nonzero


def deflated_size(path: Path) -> int:
    return len(zlib.compress(path.read_bytes(), 6))


def model_stats(path: Path) -> ModelStats:
    """Size on disk, deflated size, parameters and zeros of an ONNX or TFLite file."""
    fmt = detect_format(str(path))
    if fmt == "onnx":
        total, nonzero = count_parameters(load(path))
    else:
        try:
            total, nonzero = _tflite_parameters(path)
        except ImportError:  # the counting helper ships with ai-edge-quantizer
            total = nonzero = 0
    return ModelStats(
        path=str(path),
        format=fmt,
        size_bytes=path.stat().st_size,
        compressed_size_bytes=deflated_size(path),
        parameters=total,
        nonzero_parameters=nonzero,
    )
