from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import CompressionReport, Dataset, QuantizeConfig, quantize
from edgeship.errors import InputError, UsageError
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


def test_tflite_refuses_fp16(zoo: Manifest, tmp_path: Path) -> None:
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    with pytest.raises(UsageError, match=r"fp16 works on ONNX models .* not TFLite"):
        quantize(zoo.path("cnn.tflite"), QuantizeConfig("fp16"), None, tmp_path / "q.tflite")
