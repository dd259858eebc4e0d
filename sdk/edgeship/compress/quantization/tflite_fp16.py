"""FP16-weight TFLite models made float32 again, so that INT8 quantization sees their weights.

``--method fp16`` on a ``.tflite`` (ai-edge-quantizer's float casting), the TFLite
converter's float16 option and MediaPipe exports store weights as FLOAT16 constants, each
read by a DEQUANTIZE op whose FLOAT32 output feeds the Conv/FullyConnected. The quantizer
only quantizes constant weights: on such a model it finds none and writes a copy as large
as its input, without an error. :func:`float32_weights` turns each DEQUANTIZE of a FLOAT16
constant into the FLOAT32 constant it computes (exact: every float16 is a float32) and
drops the FLOAT16 tensors; :func:`hidden_weight` names a DEQUANTIZE it cannot undo.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["float32_weights", "hidden_weight"]


def float32_weights(data: bytes) -> tuple[bytes, int]:
    """``data`` (a ``.tflite``) with its FLOAT16 constant + DEQUANTIZE pairs replaced by
    FLOAT32 constants; how many were replaced (0: ``data`` itself)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    folded = sum(_fold(model, i) for i in range(len(model.subgraphs)))
    if not folded:
        return data, 0
    _clear_unused_buffers(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), folded


def hidden_weight(data: bytes) -> str | None:
    """A DEQUANTIZE left that hides a weight from the quantizer (a constant input, or a
    FLOAT16 one: sparse weights behind DENSIFY), described; None when there is none."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    for graph in model.subgraphs:
        for op in graph.operators:
            if not _is_dequantize(model, op):
                continue
            src = graph.tensors[op.inputs[0]]
            if _constant(model, src) or src.type == schema.TensorType.FLOAT16:
                kind = "constant" if _constant(model, src) else "computed"
                what = f"{kind} {types.get(src.type, src.type)} tensor {_name(src)!r}"
                return f"a DEQUANTIZE of the {what} (weights already quantized, or sparse)"
    return None


def _fold(model: Any, index: int) -> int:
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[index]
    outputs = {int(t) for t in graph.outputs}
    keep, dropped, folded = [], set(), 0
    for op in graph.operators:
        src = graph.tensors[op.inputs[0]] if _is_dequantize(model, op) else None
        out = int(op.outputs[0])
        # a graph output must stay computed
        if (
            src is None
            or src.type != schema.TensorType.FLOAT16
            or not _constant(model, src)
            or out in outputs
        ):
            keep.append(op)
            continue
        values = np.frombuffer(bytes(model.buffers[src.buffer].data), np.float16)
        buffer = schema.BufferT()
        buffer.data = values.astype(np.float32).view(np.uint8)
        model.buffers.append(buffer)
        graph.tensors[out].buffer = len(model.buffers) - 1
        dropped.add(int(op.inputs[0]))
        folded += 1
    if not folded:
        return 0
    graph.operators = keep
    read = {int(t) for op in keep for t in op.inputs} | {int(t) for t in graph.inputs} | outputs
    _remove_tensors(model, index, dropped - read)
    return folded


def _remove_tensors(model: Any, index: int, drop: set[int]) -> None:
    """Drop tensors ``drop`` of subgraph ``index``, renumbering every reference to the rest."""
    graph = model.subgraphs[index]
    order = [t for t in range(len(graph.tensors)) if t not in drop]
    new = {old: i for i, old in enumerate(order)}

    def remap(indices: Any) -> list[int]:
        return [new[int(t)] if t >= 0 else int(t) for t in indices]

    graph.tensors = [graph.tensors[t] for t in order]
    graph.inputs, graph.outputs = remap(graph.inputs), remap(graph.outputs)
    for op in graph.operators:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        if op.intermediates is not None:
            op.intermediates = remap(op.intermediates)
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == index:
            for item in [*(sig.inputs or []), *(sig.outputs or [])]:
                item.tensorIndex = new[item.tensorIndex]


def _clear_unused_buffers(model: Any) -> None:
    """Empty the buffers no tensor reads any more (the FLOAT16 copies), keeping the
    numbering: an empty buffer costs a few bytes, renumbering every tensor more code."""
    used = {t.buffer for graph in model.subgraphs for t in graph.tensors}
    for i, buffer in enumerate(model.buffers):
        if i not in used:
            buffer.data = None


def _is_dequantize(model: Any, op: Any) -> bool:
    from ai_edge_litert import schema_py_generated as schema

    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return bool(builtin == schema.BuiltinOperator.DEQUANTIZE)


def _constant(model: Any, tensor: Any) -> bool:
    """Whether ``tensor`` has bytes (the model was read with its offset buffers resolved)."""
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    return data is not None and len(data) > 0


def _name(tensor: Any) -> str:
    raw = tensor.name
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")
