"""Small helpers over ONNX graphs: initializers as arrays, who consumes what, which
weights pruning can take, nested graphs, loading and saving safely."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import CompressionError, NothingToPrune

__all__ = [
    "WEIGHT_OPS",
    "arrays",
    "consumers",
    "graphs",
    "load",
    "node_label",
    "owner_node",
    "producers",
    "prunable_weights",
    "readers",
    "save",
    "set_array",
    "subgraphs",
    "weight_names",
    "widen_float16",
]

WEIGHT_OPS = {"Conv": 1, "Gemm": 1, "MatMul": 1}
"""Op type → input index of the weight whose elements pruning removes."""


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


def owner_node(model: Any, named: str) -> str | None:
    """The node of ``model`` (any of its graphs) that a tool's message names: ``named``
    itself, or the node whose name begins the name of one the tool made for it (a
    converter's ``<node>_output_cast0``, ``<node>_cast_to_<output>``); None for none."""
    names = [n.name for g in graphs(model.graph) for n in g.node if n.name]
    if not named or named in names:
        return named or None
    owners = [n for n in names if named.startswith(n) and named[len(n) :].startswith("_")]
    return max(owners, key=len, default=None)


def widen_float16(model: Any) -> int:
    """Make a graph stored with float16 weights and float32 inputs and outputs (as
    ``fp16`` writes them) compute in float32, in place: its float16 initializers and
    constants widened, its casts to float16 made casts to float32. ONNX Runtime's quantizer
    takes float32 weights only (it left such a model as it was), and LiteRT's converter
    cannot lower float16 ops. The count widened (0, and nothing changed, for a model with
    float16 inputs or outputs)."""
    from onnx import TensorProto, numpy_helper

    half = TensorProto.FLOAT16
    ports = [*model.graph.input, *model.graph.output]
    if any(p.type.tensor_type.elem_type == half for p in ports):
        return 0
    count = 0
    for graph in graphs(model.graph):
        for tensor in graph.initializer:
            if tensor.data_type == half:
                wide = numpy_helper.to_array(tensor).astype(np.float32)
                tensor.CopyFrom(numpy_helper.from_array(wide, tensor.name))
                count += 1
        for node in graph.node:
            for attr in node.attribute:
                if node.op_type == "Cast" and attr.name == "to" and attr.i == half:
                    attr.i = TensorProto.FLOAT
                elif attr.HasField("t") and attr.t.data_type == half:
                    wide = numpy_helper.to_array(attr.t).astype(np.float32)
                    attr.t.CopyFrom(numpy_helper.from_array(wide, attr.t.name))
    if count:
        for graph in graphs(model.graph):
            del graph.value_info[:]  # float16 types of tensors now float32
    return count
