"""Weights stored narrower than their nodes compute
(:mod:`edgeship.compress.quantization._weights`), on small graphs run in ONNX Runtime: INT8
weights decoded in the graph (per channel on the output-feature axis of Conv, MatMul and
Gemm with ``transB``), activations left float even where ONNX Runtime would quantize a
MatMul's (a DequantizeLinear before it), float16 weights behind a Cast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress.quantization._weights import (
    FLOAT16_LEAST,
    float16_weights,
    int8_weights,
)
from edgeship.models import onnx_graph
from tests.models import save_graph

IN, OUT, BATCH = 64, 48, 5


def _weighted(path: Path, op: str) -> tuple[Path, np.ndarray]:
    """One weighted node ``op`` (named ``node``) and its weight, whose output channels
    differ in scale by 100× (one scale for the tensor would lose the small ones)."""
    rng = np.random.default_rng(0)
    gain = np.geomspace(0.01, 1.0, OUT).astype(np.float32)
    x_shape: list[int | str | None]
    if op == "Conv":
        w = rng.standard_normal((OUT, IN, 3)).astype(np.float32) * gain[:, None, None]
        node = helper.make_node("Conv", ["x", "W", "B"], ["y"], name="node", pads=[1, 1])
        x_shape, y_shape = [None, IN, 7], [None, OUT, 7]
    elif op == "MatMul":
        w = rng.standard_normal((IN, OUT)).astype(np.float32) * gain
        node = helper.make_node("MatMul", ["x", "W"], ["y"], name="node")
        x_shape, y_shape = [None, IN], [None, OUT]
    else:  # Gemm, transB=1: W is [OUT, IN]
        w = rng.standard_normal((OUT, IN)).astype(np.float32) * gain[:, None]
        node = helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="node", transB=1)
        x_shape, y_shape = [None, IN], [None, OUT]
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.ones(OUT, np.float32), "B")],
    )
    return save_graph(graph, path), w


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def _input(op: str) -> np.ndarray:
    shape = (BATCH, IN, 7) if op == "Conv" else (BATCH, IN)
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("op", ["Conv", "MatMul", "Gemm"])
def test_int8_weights_match_float_within_rounding_per_output_channel(
    tmp_path: Path, op: str
) -> None:
    base, w = _weighted(tmp_path / f"{op}.onnx", op)
    model = onnx_graph.load(base)
    assert int8_weights(model, ["node"]) == ["node"]
    out = onnx_graph.save(model, tmp_path / f"{op}.int8w.onnx")  # checked on save
    stored = {t.name: t for t in model.graph.initializer}
    assert "W" not in stored and stored["W_int8"].data_type == TensorProto.INT8
    assert not any(n.op_type == "DequantizeLinear" for n in model.graph.node)
    assert out.stat().st_size < 0.5 * base.stat().st_size
    x = _input(op)
    expected, got = _run(base, x), _run(out, x)
    # per output channel: the error stays within that channel's rounding (half a step
    # of its own scale times the input's L1 norm), so small channels keep their values
    axis = 0 if op in ("Conv", "Gemm") else 1
    steps = np.max(np.abs(w), axis=tuple(a for a in range(w.ndim) if a != axis)) / 127
    reach = float(np.max(np.abs(x).sum(axis=1))) * (3 if op == "Conv" else 1)
    channel = 1
    error = np.max(np.abs(got - expected), axis=tuple(a for a in range(got.ndim) if a != channel))
    assert np.all(error <= 0.5 * steps * reach + 1e-5)
    assert np.any(error > 0)  # dequantized values, not the float ones


def test_a_shared_weight_stays_float_for_the_node_not_chosen(tmp_path: Path) -> None:
    w = np.random.default_rng(0).standard_normal((IN, IN)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"], name="chosen"),
            helper.make_node("MatMul", ["h", "W"], ["y"], name="other"),
        ],
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, IN])],
        [numpy_helper.from_array(w, "W")],
    )
    model = onnx_graph.load(save_graph(graph, tmp_path / "shared.onnx"))
    assert int8_weights(model, ["chosen"]) == ["chosen"]
    reads = {n.name: list(n.input) for n in model.graph.node}
    assert reads["chosen"][1] == "W_int8_decoded" and reads["other"][1] == "W"
    onnx.checker.check_model(model)


def test_a_matmuls_activations_stay_float_in_onnx_runtime(tmp_path: Path) -> None:
    """An input channel of 1e4 beside channels of ~1, which that channel's zero weights
    ignore: one activation scale would round the rest away. With INT8 weights the output
    stays the float one within the weights' rounding (ONNX Runtime turns a
    ``DequantizeLinear → MatMul`` into ``MatMulNBits``, which quantizes them: not this)."""
    base, w = _weighted(tmp_path / "m.onnx", "MatMul")
    model = onnx_graph.load(base)
    rows = {t.name: i for i, t in enumerate(model.graph.initializer)}
    w = w.copy()
    w[0] = 0.0
    model.graph.initializer[rows["W"]].CopyFrom(numpy_helper.from_array(w, "W"))
    base = onnx_graph.save(model, tmp_path / "spiked.onnx")
    int8_weights(model, ["node"])
    out = onnx_graph.save(model, tmp_path / "m.int8w.onnx")
    x = _input("MatMul")
    x[:, 0] = 1e4
    expected = _run(base, x)
    np.testing.assert_allclose(_run(out, x), expected, atol=0.02 * float(np.max(np.abs(expected))))


def test_a_graph_older_than_opset_7_is_left_as_it_was(tmp_path: Path) -> None:
    base, _ = _weighted(tmp_path / "m.onnx", "MatMul")
    old = onnx_graph.load(base)
    old.opset_import[0].version = 6
    assert int8_weights(old, ["node"]) == []
    assert [t.name for t in old.graph.initializer] == ["W", "B"]


def test_float16_weights_halve_the_storage_and_keep_float32_compute(tmp_path: Path) -> None:
    base, _ = _weighted(tmp_path / "c.onnx", "Conv")
    model = onnx_graph.load(base)
    assert float16_weights(model, ["node"], 65504.0) == ["node"]
    out = onnx_graph.save(model, tmp_path / "c.f16w.onnx")
    stored = {t.name: t.data_type for t in model.graph.initializer}
    assert stored["W_fp16"] == TensorProto.FLOAT16
    assert stored["B"] == TensorProto.FLOAT  # OUT < FLOAT16_LEAST elements: left as it was
    assert OUT < FLOAT16_LEAST
    assert out.stat().st_size < 0.6 * base.stat().st_size
    x = _input("Conv") * 1e4  # beyond float16's range once summed: the compute is float32
    expected, got = _run(base, x), _run(out, x)
    assert np.isfinite(got).all() and np.max(np.abs(expected)) > 65504
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.max(np.abs(expected)))


def test_an_lstms_input_and_recurrent_weights_are_int8_by_gate_row(tmp_path: Path) -> None:
    hidden, steps = 16, 6
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((1, 4 * hidden, IN)) / np.sqrt(IN)).astype(np.float32)
    r = (rng.standard_normal((1, 4 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="node", hidden_size=hidden)],
        "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, None, IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [steps, 1, None, hidden])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")],
    )
    base = save_graph(graph, tmp_path / "lstm.onnx")
    model = onnx_graph.load(base)
    assert int8_weights(model, ["node"]) == ["node"]
    scales = {t.name: list(t.dims) for t in model.graph.initializer if t.name.endswith("_scale")}
    assert scales == {"W_int8_scale": [1, 4 * hidden, 1], "R_int8_scale": [1, 4 * hidden, 1]}
    out = onnx_graph.save(model, tmp_path / "lstm.int8w.onnx")
    x = np.random.default_rng(4).standard_normal((steps, BATCH, IN)).astype(np.float32)
    expected, got = _run(base, x), _run(out, x)
    assert np.max(np.abs(expected)) > 0.3 and np.any(got != expected)
    np.testing.assert_allclose(got, expected, atol=0.02)
    assert out.stat().st_size < 0.5 * base.stat().st_size
