from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import CompressionReport, Dataset, QuantizeConfig, quantize
from edgeship.core.errors import InputError, UsageError
from tests.sdk.compress.conftest import HAS_AEQ, HAS_FP16, accuracy, ort_outputs
from tools.zoo.build import Manifest


def _ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_static_int8_is_qdq_smaller_and_accurate(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    base = zoo.path("cnn.onnx")
    result = quantize(base, QuantizeConfig("int8-static"), test_data, tmp_path / "q.onnx")
    rec = result.report
    assert "DequantizeLinear" in _ops(result.path) and "QuantizeLinear" in _ops(result.path)
    assert rec.model.size_bytes <= 0.3 * rec.base.size_bytes
    assert rec.fidelity is not None and rec.fidelity.accuracy_drop_pt is not None
    assert rec.fidelity.accuracy_drop_pt <= 0.5
    assert rec.verified_on == "local"
    assert "/0/Conv" in rec.details["quantized_nodes"] and rec.details["format"] == "QDQ"
    assert accuracy(result.path, test_data) >= accuracy(base, test_data) - 0.005
    assert CompressionReport.from_json(rec.to_json()) == rec


@pytest.mark.parametrize("calibration", ["entropy", "percentile"])
def test_other_calibration_methods(
    zoo: Manifest, test_data: Dataset, tmp_path: Path, calibration: str
) -> None:
    config = QuantizeConfig("int8-static", calibration=calibration, calibration_samples=64)
    result = quantize(zoo.path("mlp.onnx"), config, test_data, tmp_path / "q.onnx")
    assert result.report.fidelity is not None
    assert result.report.fidelity.top1_agreement >= 0.97
    assert result.report.parameters["calibration"] == calibration


def test_excluded_nodes_and_op_types_stay_float(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    config = QuantizeConfig("int8-static", exclude_nodes=("/9/Gemm",), exclude_op_types=("Relu",))
    rec = quantize(zoo.path("cnn.onnx"), config, test_data, tmp_path / "q.onnx").report
    assert "/9/Gemm" not in rec.details["quantized_nodes"]
    assert rec.details["excluded_nodes"] == ["/9/Gemm"]
    assert "/0/Conv" in rec.details["quantized_nodes"]


def test_dynamic_int8(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    rec = quantize(
        zoo.path("mlp.onnx"), QuantizeConfig("int8-dynamic"), test_data, tmp_path / "d.onnx"
    ).report
    assert rec.model.size_bytes < 0.35 * rec.base.size_bytes
    assert rec.fidelity is not None and rec.fidelity.accuracy_drop_pt is not None
    assert rec.fidelity.accuracy_drop_pt <= 1.0
    assert rec.details["quantized_nodes"]


@pytest.mark.skipif(not HAS_FP16, reason="onnxconverter-common is not installed")
def test_fp16_keeps_float32_io(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    result = quantize(zoo.path("cnn.onnx"), QuantizeConfig("fp16"), test_data, tmp_path / "h.onnx")
    model = onnx.load(str(result.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert result.report.model.size_bytes < 0.55 * result.report.base.size_bytes
    out = ort_outputs(result.path, test_data.take(8).feeds)
    assert out.dtype == np.float32
    assert result.report.fidelity is not None and result.report.fidelity.max_abs_diff < 0.05


def test_calibration_data_that_does_not_fit(zoo: Manifest, tmp_path: Path) -> None:
    wrong_name = {"pixels": np.zeros((4, 1, 8, 8), np.float32)}
    with pytest.raises(InputError, match="missing input"):
        quantize(zoo.path("cnn.onnx"), QuantizeConfig(), wrong_name, tmp_path / "q.onnx")
    wrong_dtype = {"input": np.zeros((4, 1, 8, 8), np.float16)}
    with pytest.raises(InputError, match="dtype float16"):
        quantize(zoo.path("cnn.onnx"), QuantizeConfig(), wrong_dtype, tmp_path / "q.onnx")
    with pytest.raises(InputError, match="needs data"):
        quantize(zoo.path("cnn.onnx"), QuantizeConfig("int8-static"), None, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


def test_unknown_excluded_node(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not in the model"):
        quantize(
            zoo.path("cnn.onnx"),
            QuantizeConfig(exclude_nodes=("nope",)),
            test_data,
            tmp_path / "q.onnx",
        )


@pytest.mark.skipif(not HAS_AEQ, reason="ai-edge-quantizer is not installed")
@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_tflite_post_training_quantization(
    zoo: Manifest, test_data: Dataset, tmp_path: Path, method: str
) -> None:
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    config = QuantizeConfig(method, calibration_samples=32)
    result = quantize(zoo.path("cnn.tflite"), config, test_data.take(64), tmp_path / "q.tflite")
    rec = result.report
    assert rec.model.format == "tflite" and rec.model.size_bytes < 0.35 * rec.base.size_bytes
    assert rec.fidelity is not None and rec.fidelity.top1_agreement >= 0.95


@pytest.fixture(scope="module")
def cnn_fp16_tflite(zoo: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo CNN's TFLite with FLOAT16 weights behind DEQUANTIZE, made by edgeship."""
    if not HAS_AEQ or "tflite" not in zoo.models["cnn"].files:
        pytest.skip("needs ai-edge-quantizer and the zoo's TFLite model")
    out = tmp_path_factory.mktemp("fp16") / "cnn.fp16.tflite"
    result = quantize(zoo.path("cnn.tflite"), QuantizeConfig("fp16"), None, out)
    assert result.report.model.size_bytes < 0.55 * result.report.base.size_bytes
    assert result.report.fidelity is not None and result.report.fidelity.top1_agreement >= 0.99
    return out


def _litert_ops(path: Path) -> list[tuple[str, str]]:
    """(op, first input's type) of every op of the main subgraph."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    return [
        (
            ops[model.operatorCodes[op.opcodeIndex].builtinCode],
            types[graph.tensors[op.inputs[0]].type],
        )
        for op in graph.operators
    ]


def test_tflite_fp16_stores_float16_weights(cnn_fp16_tflite: Path) -> None:
    assert ("DEQUANTIZE", "FLOAT16") in _litert_ops(cnn_fp16_tflite)


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_tflite_int8_of_an_fp16_weight_model(
    zoo: Manifest, cnn_fp16_tflite: Path, test_data: Dataset, tmp_path: Path, method: str
) -> None:
    config = QuantizeConfig(method, calibration_samples=32)
    out = tmp_path / "q.tflite"
    rec = quantize(cnn_fp16_tflite, config, test_data.take(64), out).report
    assert any("FLOAT16 weight(s) behind DEQUANTIZE made FLOAT32" in n for n in rec.notes)
    assert ("DEQUANTIZE", "FLOAT16") not in _litert_ops(out)
    fp32 = zoo.path("cnn.tflite").stat().st_size
    assert rec.model.size_bytes < 0.35 * fp32 and rec.model.size_bytes < 0.7 * rec.base.size_bytes
    assert rec.fidelity is not None and rec.fidelity.top1_agreement >= 0.95
    predicted = _litert_logits(out, test_data.feeds["input"][:64]).argmax(1)
    assert (predicted == test_data.labels[:64]).mean() >= 0.9


def _litert_logits(path: Path, images: np.ndarray) -> np.ndarray:
    """Plain LiteRT, sample by sample (INT8 inputs quantized with the model's own scale)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    scale, zero = inp["quantization"]
    logits = []
    for x in images:
        value = np.round(x / scale + zero).astype(inp["dtype"]) if scale else x
        interp.set_tensor(inp["index"], value[None])
        interp.invoke()
        logits.append(interp.get_tensor(out["index"]).astype(np.float32))
    return np.concatenate(logits)


@pytest.mark.skipif(not HAS_AEQ, reason="ai-edge-quantizer is not installed")
def test_tflite_refuses_weights_already_behind_dequantize(zoo: Manifest, tmp_path: Path) -> None:
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    from ai_edge_quantizer import quantizer, recipe_manager

    manager = recipe_manager.RecipeManager()  # INT8 weight-only: INT8 constants + DEQUANTIZE
    manager.add_weight_only_config(".*", "*", 8)
    q = quantizer.Quantizer(str(zoo.path("cnn.tflite")), manager.get_quantization_recipe())
    int8_weights = tmp_path / "w8.tflite"
    int8_weights.write_bytes(bytes(q.quantize().quantized_model))
    with pytest.raises(
        UsageError, match="cannot quantize around a DEQUANTIZE of the constant INT8"
    ):
        quantize(int8_weights, QuantizeConfig("int8-dynamic"), None, tmp_path / "q.tflite")
    assert not (tmp_path / "q.tflite").exists()


def _if_model(path: Path) -> Path:
    """``y = x·W1 if flag else x·W2``: every weight inside an ``If`` branch (as Silero's)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def branch(name: str) -> onnx.GraphProto:
        weight = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), name)
        node = helper.make_node("MatMul", ["x", name], [f"y_{name}"])
        out = helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None)
        return helper.make_graph([node], name, [], [out], [weight])

    node = helper.make_node(
        "If", ["flag"], ["y"], name="choose", then_branch=branch("W1"), else_branch=branch("W2")
    )
    graph = helper.make_graph(
        [node],
        "if",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_weights_only_inside_an_if_are_refused_naming_it(tmp_path: Path) -> None:
    from edgeship.compress import UnsupportedPattern

    base = _if_model(tmp_path / "if.onnx")
    data = tmp_path / "if.npz"
    rng = np.random.default_rng(1)
    np.savez(data, x=rng.standard_normal((40, 4)).astype(np.float32), flag=np.array(True))
    with pytest.raises(UnsupportedPattern, match=r"node 'choose' \(If\): the weights lie in its"):
        quantize(base, QuantizeConfig("int8-static"), data, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()
