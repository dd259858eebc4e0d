"""TFLite quantization of files as older converters write them (MediaPipe's face detector,
face landmark and iris models): operator codes in the schema's deprecated field only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.compress import Dataset, FidelityCollapse, NothingToConvert, QuantizeConfig, quantize
from edgeship.compress.quantization.tflite_fp16 import float32_weights
from edgeship.compress.quantization.tflite_int8 import current_op_codes
from tests.sdk.compress.conftest import HAS_AEQ
from tools.zoo.build import Manifest

pytestmark = pytest.mark.skipif(not HAS_AEQ, reason="ai-edge-quantizer is not installed")


def _codes(data: bytes) -> list[tuple[int, int]]:
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    return [(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]


@pytest.fixture(scope="module")
def old_schema(zoo: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo CNN's TFLite with every operator code in ``deprecated_builtin_code`` and
    ``builtin_code`` left at 0, as MediaPipe's older exports have them."""
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(zoo.path("cnn.tflite")))
    for code in model.operatorCodes:
        assert code.builtinCode < 127  # the deprecated field holds codes up to 127 only
        code.deprecatedBuiltinCode, code.builtinCode = code.builtinCode, 0
    out = tmp_path_factory.mktemp("old") / "cnn.old.tflite"
    out.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out


def _outputs(path: Path | bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": path} if isinstance(path, bytes) else {"model_path": str(path)}
    interp = Interpreter(**source)
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    found = []
    for x in images:
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        found.append(interp.get_tensor(out["index"]))
    return np.concatenate(found)


def test_current_op_codes_moves_the_deprecated_ones(
    zoo: Manifest, old_schema: Path, test_data: Dataset
) -> None:
    data, moved = current_op_codes(old_schema.read_bytes())
    current = [b for b, _ in _codes(zoo.path("cnn.tflite").read_bytes())]
    assert [b for b, _ in _codes(data)] == current
    assert moved == sum(b > 0 for b in current) > 0  # ADD is 0 in both fields
    images = test_data.feeds["input"][:4]
    assert np.array_equal(_outputs(data, images), _outputs(old_schema, images))


def test_current_op_codes_leaves_a_current_file_as_it_is(zoo: Manifest) -> None:
    data = zoo.path("cnn.tflite").read_bytes()
    assert current_op_codes(data) == (data, 0)


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static", "fp16"])
def test_an_old_schema_model_is_quantized(
    old_schema: Path, test_data: Dataset, tmp_path: Path, method: str
) -> None:
    """Read by ``builtin_code`` alone, every op was an ADD: nothing quantized (int8-dynamic
    and fp16: a no-op), or convolution weights with a zero point the kernel refuses
    (int8-static: a file that does not load)."""
    config = QuantizeConfig(method, calibration_samples=32)
    out = tmp_path / "q.tflite"
    report = quantize(old_schema, config, test_data.take(64), out).report
    assert any("read from the schema's deprecated field" in n for n in report.notes)
    assert report.model.size_bytes < (0.55 if method == "fp16" else 0.35) * report.base.size_bytes
    assert report.fidelity is not None and report.fidelity.top1_agreement >= 0.95
    predicted = _outputs(out, test_data.feeds["input"][:64]).argmax(1)
    assert (predicted == test_data.labels[:64]).mean() >= 0.9


@pytest.fixture(scope="module")
def two_outputs(zoo: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo CNN's TFLite without a SignatureDef (as MediaPipe ships models) and a second
    output, the first convolution's, named to sort before ``logits``: outputs in an
    order that is not alphabetical, as MediaPipe's face detector (boxes, then scores)."""
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(zoo.path("cnn.tflite")))
    model.signatureDefs = []
    graph = model.subgraphs[0]
    first = int(graph.operators[0].outputs[0])
    graph.tensors[first].name = b"a_features"
    graph.outputs = [*graph.outputs, first]
    out = tmp_path_factory.mktemp("two") / "cnn.two.tflite"
    out.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_a_model_without_signature_keeps_its_interface(
    two_outputs: Path, test_data: Dataset, tmp_path: Path, method: str
) -> None:
    """The signature added for the quantizer is dropped again: a signature lists outputs
    by name (alphabetically), so keeping it would swap them for a caller by position."""
    from ai_edge_litert.tools import flatbuffer_utils

    from edgeship.compress._evaluate import signature

    out = tmp_path / "q.tflite"
    config = QuantizeConfig(method, calibration_samples=32)
    data = {"serving_default_input": test_data.feeds["input"][:64]}  # its tensor's name
    report = quantize(two_outputs, config, data, out).report
    assert not flatbuffer_utils.read_model(str(out)).signatureDefs
    assert report.interface == []
    base, got = signature(two_outputs), signature(out)
    assert [o.name for o in got.outputs] == [o.name for o in base.outputs]
    assert [o.name for o in base.outputs][-1] == "a_features"


def test_fp16_of_fp16_weights_has_nothing_to_convert(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    fp16w = quantize(zoo.path("cnn.tflite"), QuantizeConfig("fp16"), None, tmp_path / "w.tflite")
    out = tmp_path / "again.tflite"
    with pytest.raises(NothingToConvert, match=r"weights are FLOAT16 already \(\d+ behind"):
        quantize(fp16w.path, QuantizeConfig("fp16"), test_data.take(16), out)
    assert not out.exists()


@pytest.fixture(scope="module")
def outlier(zoo: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo CNN's TFLite with 1000 added to one column of its last layer's weights:
    the same shift of every logit (the class it picks is unchanged), but one INT8 scale a
    row rounds every other weight of the layer to 0, and the classes with them."""
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(zoo.path("cnn.tflite")))
    graph = model.subgraphs[0]
    weights = graph.tensors[graph.operators[-1].inputs[1]]
    buffer = model.buffers[weights.buffer]
    w = np.frombuffer(bytes(buffer.data), np.float32).reshape(list(weights.shape)).copy()
    w[:, 0] += 1000.0
    buffer.data = w.view(np.uint8).ravel()
    out = tmp_path_factory.mktemp("outlier") / "cnn.outlier.tflite"
    out.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out


def test_the_fallback_keeps_the_layer_that_collapses_the_model_in_float(
    outlier: Path, test_data: Dataset, tmp_path: Path
) -> None:
    data = test_data.take(80)
    with pytest.raises(FidelityCollapse, match="top-1 agreement"):
        quantize(outlier, QuantizeConfig(fallback=False), data, tmp_path / "all.tflite")
    report = quantize(outlier, QuantizeConfig(), data, tmp_path / "q.tflite").report
    kept = report.details["fallback"]["kept_float"]
    assert kept and "logits" in kept[0]  # the last layer, ranked first
    assert any(n.startswith("fallback: the fully quantized model collapsed") for n in report.notes)
    assert report.fidelity is not None and report.fidelity.top1_agreement >= 0.95
    assert report.model.size_bytes < 0.5 * report.base.size_bytes


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_layers_kept_in_float_of_a_float16_model_stay_float16(
    outlier: Path, test_data: Dataset, tmp_path: Path, method: str
) -> None:
    """A base that stores FLOAT16 weights keeps them so in the layers the fallback keeps:
    widened to FLOAT32, MediaPipe's face detector held at 1.02× its base's size."""
    half = quantize(outlier, QuantizeConfig("fp16"), None, tmp_path / "half.tflite").path
    out = tmp_path / "q.tflite"
    config = QuantizeConfig(method, calibration_samples=32)
    report = quantize(half, config, test_data.take(80), out).report
    assert report.details["fallback"]["kept_float"]
    assert float32_weights(out.read_bytes())[1] >= 1  # a FLOAT16 weight behind DEQUANTIZE
    assert report.fidelity is not None and report.fidelity.top1_agreement >= 0.95
    assert report.model.size_bytes < 0.6 * report.base.size_bytes
