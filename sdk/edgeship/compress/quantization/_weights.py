"""Weights stored narrower than their nodes compute: a node kept in float (its activations
float) whose weight initializers are stored as INT8 or float16 and decoded in the graph.

* :func:`int8_weights` ("weight-only INT8"): each chosen node's weights become INT8,
  symmetric, per output channel (``Conv``: axis 0; ``ConvTranspose``: 1; ``MatMul``: the
  weight's last axis; ``Gemm``: axis 0 with ``transB``, else 1; ``LSTM``/``GRU``/``RNN``:
  ``W`` and ``R`` by gate row, axis 1), decoded by ``Cast`` to float32 and ``Mul`` by the
  channels' scales; the node computes in float as before.
* :func:`float16_weights`: each chosen node's float32 weights stored as float16 behind a
  ``Cast`` to float32 (an ``fp16`` conversion's nodes kept float32 stay half the size).

Why ``Cast``·``Mul`` and not ``DequantizeLinear``: ONNX Runtime (1.32) folds a ``Cast`` or
``Mul`` of initializers into a float32 initializer when the session loads, so the decoding
costs nothing per call and the node computes exactly as a float one with rounded weights.
A ``DequantizeLinear`` it keeps for its QDQ fusions: before a ``Conv`` it then runs on each
call (the openWakeWord front-end: 1.09× the float latency, a small CNN 1.6×), and with
a ``MatMul`` it may become ``MatMulNBits`` (8 bits), which quantizes the activations after
all (a MatMul whose input holds one channel of 1e4 gave outputs near 0). Any opset from 7
(``Mul``'s broadcasting) takes one scale per channel.

What is saved is file size: the session holds the weights in float32 once loaded.
Only the chosen nodes read the decoded tensor: a weight another node shares keeps its
original initializer for that node. A weight is an initializer of the node's own graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgeship.models.onnx_graph import graphs

__all__ = [
    "BROADCAST_OPSET",
    "FLOAT16_LEAST",
    "FLOAT16_TINY",
    "float16_weights",
    "int8_weights",
]

BROADCAST_OPSET = 7
"""``Mul`` broadcasts a per-channel scale from opset 7: an older graph gets nothing."""

FLOAT16_LEAST = 64
"""Fewer elements are left float32: scalars and small vectors (a ``Clip`` bound, a log's
epsilon) weigh nothing, and their exact value may matter."""

FLOAT16_TINY = 1e-7
"""onnxconverter-common's ``min_positive_val``: smaller nonzero weights are raised to it."""

_RECURRENT = {"LSTM", "GRU", "RNN"}


def _weight_axes(node: Any) -> dict[int, int]:
    """Input index → the axis of its output channels, for the weights of ``node``."""
    op = node.op_type
    if op == "Conv":
        return {1: 0}
    if op == "ConvTranspose":
        return {1: 1}
    if op == "MatMul":
        return {1: -1}
    if op == "Gemm":
        trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return {1: 0 if trans else 1}
    if op in _RECURRENT:
        return {1: 1, 2: 1}
    return {}


def int8_weights(model: Any, nodes: Iterable[str]) -> list[str]:
    """Give the weights of the named nodes (any graph of ``model``) INT8 storage, one
    scale per output channel, decoded in the graph, in place; the names of the nodes that
    got some (none below opset 7)."""
    from onnx import TensorProto, numpy_helper

    if _opset(model) < BROADCAST_OPSET:
        return []

    def decode(graph: Any, name: str, value: np.ndarray, axis: int) -> str:
        axis %= value.ndim
        peak = np.max(np.abs(value), axis=tuple(a for a in range(value.ndim) if a != axis))
        shape = [-1 if a == axis else 1 for a in range(value.ndim)]
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32).reshape(shape)
        q = np.clip(np.round(value / scale), -127, 127).astype(np.int8)
        stored = f"{name}_int8"
        graph.initializer.extend(
            [numpy_helper.from_array(q, stored), numpy_helper.from_array(scale, f"{stored}_scale")]
        )
        return _decoded(graph, stored, TensorProto.FLOAT, f"{stored}_scale")

    return _rewrite(model, set(nodes), _weight_axes, 2, decode)


def _decoded(graph: Any, stored: str, to: int, scale: str | None = None) -> str:
    """The name of ``stored`` cast to ``to`` (times ``scale``), the nodes that make it put
    first in ``graph``."""
    from onnx import helper

    cast = helper.make_node("Cast", [stored], [f"{stored}_cast"], name=f"{stored}_Cast", to=to)
    if scale is None:
        graph.node.insert(0, cast)
        return f"{stored}_cast"
    mul = helper.make_node(
        "Mul", [f"{stored}_cast", scale], [f"{stored}_decoded"], name=f"{stored}_Mul"
    )
    graph.node.insert(0, mul)
    graph.node.insert(0, cast)
    return f"{stored}_decoded"


def float16_weights(model: Any, nodes: Iterable[str], limit: float) -> list[str]:
    """Store the float32 initializers that the named nodes read as float16 behind a
    ``Cast`` to float32, in place, except small ones (:data:`FLOAT16_LEAST`) and those
    with a value beyond ``limit`` (float16's largest finite value); nonzero values below
    :data:`FLOAT16_TINY` become that (signed), as the fp16 converter's do (a window's
    tapered ends); the names of the nodes that got some."""
    from onnx import TensorProto, numpy_helper

    def decode(graph: Any, name: str, value: np.ndarray, axis: int) -> str | None:
        if value.size < FLOAT16_LEAST or float(np.max(np.abs(value))) > limit:
            return None
        tiny = (value != 0) & (np.abs(value) < FLOAT16_TINY)
        half = np.where(tiny, np.sign(value) * FLOAT16_TINY, value).astype(np.float16)
        stored = f"{name}_fp16"
        graph.initializer.append(numpy_helper.from_array(half, stored))
        return _decoded(graph, stored, TensorProto.FLOAT)

    def every_input(node: Any) -> dict[int, int]:
        return dict.fromkeys(range(len(node.input)), 0)

    return _rewrite(model, set(nodes), every_input, 0, decode)


Axes = Callable[[Any], dict[int, int]]
Decode = Callable[[Any, str, np.ndarray, int], "str | None"]


def _rewrite(model: Any, names: set[str], axes: Axes, least: int, decode: Decode) -> list[str]:
    """Point each chosen node's float32 weight inputs (``axes(node)``: input index →
    channel axis) of rank ``least`` or more at what ``decode(graph, name, value, axis)``
    stores and decodes (None: leave that one); drop initializers nobody reads any more."""
    from onnx import TensorProto, numpy_helper

    names = names - {""}  # an unnamed node cannot be chosen
    done: list[str] = []
    for graph in graphs(model.graph):
        inits = {t.name: t for t in graph.initializer}
        decoded: dict[str, str | None] = {}
        for node in [n for n in graph.node if n.name in names]:
            for index, axis in axes(node).items():
                name = node.input[index] if index < len(node.input) else ""
                tensor = inits.get(name)
                if (
                    tensor is None
                    or tensor.data_type != TensorProto.FLOAT
                    or len(tensor.dims) < least
                ):
                    continue
                if name not in decoded:
                    decoded[name] = decode(graph, name, numpy_helper.to_array(tensor), axis)
                if decoded[name] is not None:
                    node.input[index] = decoded[name]
                    done += [node.name] if node.name not in done else []
        _drop_unread(model, graph, [n for n, d in decoded.items() if d is not None])
    return done


def _drop_unread(model: Any, graph: Any, names: list[str]) -> None:
    """Remove the initializers of ``graph`` in ``names`` that no node of any graph reads
    (subgraphs may read an outer graph's initializer)."""
    read = {t for g in graphs(model.graph) for n in g.node for t in n.input}
    read |= {o.name for o in graph.output} | {i.name for i in graph.input}
    keep = [t for t in graph.initializer if t.name not in names or t.name in read]
    if len(keep) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
