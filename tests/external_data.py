"""A tiny ONNX model whose weights live in external data files: ``y = x @ W + b``.

``W`` is an initializer and ``b`` the tensor attribute of a Constant node, so both places
a tensor can keep its bytes outside the model file are covered.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from tests.models import IR_VERSION, OPSET

IN, OUT = 4, 3
_rng = np.random.default_rng(7)
WEIGHT = _rng.standard_normal((IN, OUT)).astype(np.float32)
BIAS = _rng.standard_normal((OUT,)).astype(np.float32)


def expected(x: np.ndarray) -> np.ndarray:
    return np.asarray(x @ WEIGHT + BIAS, dtype=np.float32)


def external_data_model(
    path: str | os.PathLike[str], locations: Mapping[str, str] | None = None
) -> Path:
    """Write the model to ``path``: both tensors in ``<file name>.data`` beside it (what
    ``onnx.save(..., save_as_external_data=True)`` does), or each at
    ``locations[tensor name]`` (``"W"``, ``"b"``), relative to the model's directory."""
    path = Path(path)
    weight = numpy_helper.from_array(WEIGHT, "W")
    bias = numpy_helper.from_array(BIAS, "b")
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["b"], value=bias),
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", OUT])],
        initializer=[weight],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeship-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    if locations is None:
        onnx.save(
            model,
            str(path),
            save_as_external_data=True,
            location=path.name + ".data",
            size_threshold=0,
            convert_attribute=True,
        )
        return path
    tensors = {"W": model.graph.initializer[0], "b": model.graph.node[0].attribute[0].t}
    for name, location in locations.items():
        (path.parent / location).parent.mkdir(parents=True, exist_ok=True)
        external_data_helper.set_external_data(tensors[name], location)
    onnx.save(model, str(path))
    return path
