"""ONNX→TFLite and verification on graphs as they come from the field (issue 12): dynamic
dims are never guessed, constant Reshape/Resize arithmetic is made static for
torch.export, maps are not judged by an arg-max, and failures are one line naming the
cause."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgeship.convert import ConvertConfig, VerifyData, convert
from edgeship.convert import _onnx_tflite as onnx_tflite
from edgeship.convert._litert import translate
from edgeship.core.errors import ConversionError, InputError
from edgeship.models.torch_ops import slice_static
from edgeship.models.verify import Tolerance, compare_output, verification_feeds
from edgeship_runtime.signature import Signature, TensorSpec
from tests.models import lstm_model
from tests.sdk.compress import models
from tests.sdk.convert import graphs

HAS_CONVERT = all(
    importlib.util.find_spec(m) is not None for m in ("onnx2torch", "litert_torch", "onnxslim")
)

MAP = Signature((TensorSpec("x", ("batch", 3, "height", "width"), "float32"),), ())


def test_a_dynamic_image_side_is_never_set_to_one() -> None:
    with pytest.raises(InputError, match=r"dimension 2 \('height'\).*--shape x=1,3,HEIGHT,WIDTH"):
        onnx_tflite.example_inputs(MAP, 1, {})
    example = onnx_tflite.example_inputs(MAP, 2, {"x": (2, 3, 32, 48)})
    assert example["x"].shape == (2, 3, 32, 48)


def test_verification_inputs_take_the_shape_given() -> None:
    with pytest.raises(InputError, match="--shape x="):
        verification_feeds(MAP, VerifyData(samples=4))
    feeds = verification_feeds(MAP, VerifyData(samples=4, shapes={"x": (1, 3, 8, 6)}))
    assert feeds["x"].shape == (4, 3, 8, 6)  # the batch is the samples compared


def test_shapes_come_from_the_verification_data(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 3, 16, 24), np.float32), labels=np.zeros(5))
    assert onnx_tflite.data_shapes(tmp_path / "d.npz", 1) == {"x": (1, 3, 16, 24)}


def test_a_probability_map_is_compared_without_top1() -> None:
    ref = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    noisy = ref + np.float32(1e-7)
    [row] = compare_output("m", "m", ref, noisy, Tolerance())
    assert row.top1_agreement is None and row.passed


def test_a_data_dependent_shape_is_one_line_naming_the_construct() -> None:
    text = (
        "Could not guard on data-dependent expression Eq(u0, 1) (unhinted: Eq(u0, 1)).\n"
        "While executing %reshape_18 : [num_users=1] = call_module[target=Reshape@18](args"
    )
    guard = type("GuardOnDataDependentSymNode", (RuntimeError,), {})
    message = str(translate(guard(text), dynamic=True))
    assert "\n" not in message and "shape computed from tensor values" in message
    assert "Reshape@18" in message and "--shape" in message
    fixed = str(translate(guard(text)))  # every dim fixed already: --shape would not help
    assert "Reshape@18" in fixed and "--shape" not in fixed


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CONVERT, reason="onnx2torch, litert-torch or onnxslim missing")
def test_constant_reshape_and_resize_convert_to_tflite(tmp_path: Path) -> None:
    """Constant weights, a Reshape with a 0 dim and a Resize by constant scales: each would
    stop torch.export on a data-dependent guard without the static rewrite."""
    source = graphs.field_reshape_model(tmp_path / "field.onnx")
    shapes = {"x": (1, 2, 4, 4)}
    config = ConvertConfig(
        str(source),
        tmp_path / "field.tflite",
        shapes=shapes,
        verify=VerifyData(samples=4, shapes=shapes),
    )
    report = convert(config).report
    assert report.passed
    assert any("Constants folded" in n for n in report.notes)
    assert {o.name: o.top1_agreement is None for o in report.verification.outputs} == {
        "m": True,  # a map: cosine and max |Δ| only
        "y": False,
    }


def test_static_rewrites_follow_onnx_semantics() -> None:
    import torch

    x = torch.arange(24.0).reshape(2, 3, 4)
    assert onnx_tflite.reshape_static(x, (0, -1)).shape == (2, 12)
    assert onnx_tflite.squeeze_static(x[:, :1], (1,)).shape == (2, 4)
    assert onnx_tflite.unsqueeze_static(x, (0, -1)).shape == (1, 2, 3, 4, 1)
    sliced = slice_static(x, (1, -3), (2**62, 10), (2, 1), None)
    assert torch.equal(sliced, x[:, -3:, 1:])
    expected = x.flip(2)[:, :, ::2]  # indices 3, 1 (torch slices take no negative step)
    assert torch.equal(slice_static(x, (-1,), (-(2**62),), (2,), (-2,)), expected)
    assert torch.equal(onnx_tflite.gather_static(x, 1, -1), x[:, 2])
    assert onnx_tflite.gather_static(x, 2, [[0, 1], [3, 3]]).shape == (2, 3, 2, 2)
    up = onnx_tflite.resize_static(x[None], "nearest", None, [1, 1, 2, 2], None)
    assert up.shape == (1, 2, 6, 8)


def test_a_clip_at_a_computed_bound_becomes_max_and_min(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    source = graphs.computed_clip_model(tmp_path / "clip.onnx")
    model = onnx.load(str(source))
    assert onnx_tflite.computed_clips(model) == 1
    assert [n.op_type for n in model.graph.node][-2:] == ["Max", "Min"]
    rewritten = tmp_path / "max_min.onnx"
    onnx.save(model, str(rewritten))
    x = {"x": np.random.default_rng(2).standard_normal((1, graphs.WIDTH)).astype(np.float32)}
    want, got = (ort.InferenceSession(str(p)).run(None, x)[0] for p in (source, rewritten))
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
def test_a_clip_at_a_computed_bound_converts_to_tflite(tmp_path: Path) -> None:
    source = graphs.computed_clip_model(tmp_path / "clip.onnx")
    verify = VerifyData(samples=4)
    report = convert(ConvertConfig(str(source), tmp_path / "clip.tflite", verify=verify)).report
    assert report.passed


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
def test_a_model_stored_with_float16_weights_converts_to_tflite(tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    from edgeship.compress import QuantizeConfig, quantize

    half = tmp_path / "half.onnx"
    quantize(models.residual(tmp_path / "residual.onnx"), QuantizeConfig("fp16"), None, half)
    shapes = {"x": (1, models.IN_CHANNELS, models.SIDE, models.SIDE)}  # padded 3×3 convs
    verify = VerifyData(samples=4, shapes=shapes)
    config = ConvertConfig(str(half), tmp_path / "half.tflite", shapes=shapes, verify=verify)
    report = convert(config).report
    assert report.passed
    assert any("float16 weight(s) widened to float32" in n for n in report.notes)


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
def test_a_split_at_sizes_given_as_a_tensor_converts_to_tflite(tmp_path: Path) -> None:
    """onnx2torch reads opset 13's split sizes from a tensor (``split.tolist()``), which
    LiteRT cannot lower (``aten._local_scalar_dense``): YOLOv8's head was refused so."""
    source = graphs.split_model(tmp_path / "split.onnx")
    verify = VerifyData(samples=4)
    report = convert(ConvertConfig(str(source), tmp_path / "split.tflite", verify=verify)).report
    assert report.passed


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
def test_global_max_pool_converts_to_tflite(tmp_path: Path) -> None:
    source = graphs.global_max_pool_model(tmp_path / "pool.onnx")
    verify = VerifyData(samples=4)
    report = convert(ConvertConfig(str(source), tmp_path / "pool.tflite", verify=verify)).report
    assert report.passed


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
@pytest.mark.parametrize(
    ("direction", "state", "head"), [("forward", True, True), ("bidirectional", False, False)]
)
def test_an_lstm_converts_to_tflite(
    tmp_path: Path, direction: str, state: bool, head: bool
) -> None:
    """With ``head``, Silero's outputs: a probability, then the LSTM's two states (which
    onnx2torch alone returns as one tuple of three)."""
    source = lstm_model(tmp_path / "lstm.onnx", direction, state, batch=1, head=head)
    verify = VerifyData(samples=4)
    report = convert(ConvertConfig(str(source), tmp_path / "lstm.tflite", verify=verify)).report
    assert report.passed
    first = "p" if head else "y"
    assert [o.name for o in report.verification.outputs] == [first, "y_h", "y_c"]


def test_an_lstm_with_per_sample_lengths_is_one_line_naming_them(tmp_path: Path) -> None:
    import onnx

    if importlib.util.find_spec("onnx2torch") is None:  # not imported: it may raise (torchvision)
        pytest.skip("needs onnx2torch")
    model = onnx.load(str(lstm_model(tmp_path / "lstm.onnx", batch=1)))
    model.graph.node[0].input[4] = "lengths"
    model.graph.input.append(
        onnx.helper.make_tensor_value_info("lengths", onnx.TensorProto.INT32, [1])
    )
    source = tmp_path / "lengths.onnx"
    onnx.save(model, str(source))
    with pytest.raises(ConversionError, match="sequence_lens") as info:
        convert(ConvertConfig(str(source), tmp_path / "lstm.tflite"))
    assert "\n" not in str(info.value) and "'lstm'" in str(info.value)


@pytest.mark.skipif(not HAS_CONVERT, reason="needs onnx2torch, litert-torch and onnxslim")
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_a_pad_of_any_axis_converts_to_tflite(tmp_path: Path, mode: str) -> None:
    """onnx2torch reads pads from a tensor (torch.export cannot) and reflects or repeats
    only the last axes; Silero's VAD reflects its one audio axis of a 2-D input."""
    source = models.pad(tmp_path / "pad.onnx", mode, "computed")
    verify = VerifyData(samples=4)
    report = convert(ConvertConfig(str(source), tmp_path / "pad.tflite", verify=verify)).report
    assert report.passed
