"""What a model file holds, for the record: size on disk and deflated, parameters, and how
many of them are zero (so sparsity)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.models.model_file import ModelFile
from edgeship.models.onnx_graph import graphs

__all__ = ["ModelStats", "count_parameters", "deflated_size", "model_stats"]

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


@dataclass
class ModelStats:
    """One model file: where, how big, how many parameters and how many of them are zero."""

    path: str
    format: str
    size_bytes: int
    compressed_size_bytes: int
    parameters: int
    nonzero_parameters: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero_parameters / self.parameters if self.parameters else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sparsity": round(self.sparsity, 6)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelStats:
        return cls(
            path=str(data["path"]),
            format=str(data["format"]),
            size_bytes=int(data["size_bytes"]),
            compressed_size_bytes=int(data["compressed_size_bytes"]),
            parameters=int(data["parameters"]),
            nonzero_parameters=int(data["nonzero_parameters"]),
        )


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
    model = ModelFile.of(path)
    fmt = model.format
    if fmt == "onnx":
        total, nonzero = count_parameters(model.graph)
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
