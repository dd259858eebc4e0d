from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgeship.compress import Dataset, TrainConfig, UnsupportedPattern
from edgeship.compress.training.loop import fit, predict_torch
from edgeship.compress.training.torch_graph import OnnxModule, fixed_initializers
from edgeship.models import onnx_graph
from edgeship.models.prepare import fold_constants
from tests.models import LSTM_HIDDEN, LSTM_IN, LSTM_STEPS, field_cnn_model, lstm_model
from tests.sdk.compress import models
from tests.sdk.compress.conftest import ort_outputs
from tools.zoo.build import Manifest


def _viewed(path: Path, x: np.ndarray) -> np.ndarray:
    """The torch view's output of the model at ``path`` on ``x``."""
    with torch.no_grad():
        return OnnxModule(onnx.load(str(path)))(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", ["mlp.onnx", "cnn.onnx"])
def test_matches_onnxruntime_on_the_zoo(zoo: Manifest, name: str) -> None:
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    got = _viewed(zoo.path(name), x)
    assert np.allclose(got, ort_outputs(zoo.path(name), {"input": x}), atol=1e-4)


def test_matches_onnxruntime_on_a_residual_block(patterns: dict[str, Path]) -> None:
    feeds = models.sample_inputs(4)
    got = _viewed(patterns["residual"], feeds["x"])
    assert np.allclose(got, ort_outputs(patterns["residual"], feeds), atol=1e-4)


def test_write_back_round_trips(zoo: Manifest) -> None:
    model = onnx.load(str(zoo.path("mlp.onnx")))
    module = OnnxModule(model)
    with torch.no_grad():
        module.param("1.bias").fill_(0.25)
    written = module.write_back(model)
    bias = next(t for t in written.graph.initializer if t.name == "1.bias")
    assert np.all(onnx.numpy_helper.to_array(bias) == 0.25)


def test_unsupported_op_names_the_node() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(UnsupportedPattern, match="'the_hardmax' \\(Hardmax\\)"):
        OnnxModule(helper.make_model(graph))


def test_the_shape_arithmetic_of_field_exports_matches_onnxruntime(tmp_path: Path) -> None:
    path = models.shape_ops(tmp_path / "shape_ops.onnx")
    x = models.sample_inputs(3)["x"]
    got = _viewed(path, x)
    np.testing.assert_allclose(got, ort_outputs(path, {"x": x}), rtol=1e-5, atol=1e-5)


def test_op_settings_and_scalars_stay_fixed_while_training(tmp_path: Path) -> None:
    """A decomposed layer norm's exponent and epsilon are not weights: trained, the exponent
    leaves 2.0 and every negative base turns NaN (fine-tuning then stopped at its first
    step, having done nothing)."""
    path = models.decomposed_norm(tmp_path / "norm.onnx")
    model = onnx.load(str(path))
    assert fixed_initializers(model, onnx_graph.arrays(model)) == {"two", "eps"}
    data = Dataset({"x": np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)})
    teacher = predict_torch(OnnxModule(model), data)
    student = OnnxModule(model)
    assert set(student.index) == {"w", "gamma"}
    with torch.no_grad():
        student.param("w").mul_(1.3)
    log = fit(student, data, teacher, TrainConfig(epochs=3, lr=1e-2, batch_size=8))
    assert log.stopped == "epochs" and log.epochs == 3
    onnx.save(student.write_back(model), str(tmp_path / "trained.onnx"))
    got = ort_outputs(tmp_path / "trained.onnx", data.feeds)
    assert np.allclose(got, predict_torch(student, data), atol=1e-4)


def test_batch_norm_statistics_stay_fixed(tmp_path: Path) -> None:
    model = onnx.load(str(field_cnn_model(tmp_path / "field.onnx")))
    fold_constants(model)
    fixed = fixed_initializers(model, onnx_graph.arrays(model))
    assert {"bn_m", "bn_v"} <= fixed
    assert {"w1", "w2", "bn_s", "bn_b"}.isdisjoint(fixed)


def test_split_log_and_reduce_max_match_onnxruntime(tmp_path: Path) -> None:
    path = models.split_log_max(tmp_path / "split.onnx")
    x = np.random.default_rng(4).standard_normal((3, 6, 4)).astype(np.float32)
    got = _viewed(path, x)
    np.testing.assert_allclose(got, ort_outputs(path, {"x": x}), rtol=1e-5, atol=1e-5)


def test_range_expand_and_constant_of_shape_match_onnxruntime(tmp_path: Path) -> None:
    path = models.anchors(tmp_path / "anchors.onnx")
    x = np.random.default_rng(5).standard_normal((2, 1, 7)).astype(np.float32)
    got = _viewed(path, x)
    np.testing.assert_allclose(got, ort_outputs(path, {"x": x}), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", ["initializer", "computed", "attribute"])
def test_pad_matches_onnxruntime(tmp_path: Path, mode: str, pads: str) -> None:
    path = models.pad(tmp_path / "pad.onnx", mode, pads)
    x = np.random.default_rng(6).standard_normal((2, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(_viewed(path, x), ort_outputs(path, {"x": x}), rtol=1e-6)


def test_magikas_reductions_match_onnxruntime(tmp_path: Path) -> None:
    path = models.reductions(tmp_path / "reductions.onnx")
    x = np.random.default_rng(7).standard_normal((4, 3, 5)).astype(np.float32)
    got = _viewed(path, x)
    np.testing.assert_allclose(got, ort_outputs(path, {"x": x}), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("direction", "state"), [("forward", True), ("reverse", False), ("bidirectional", True)]
)
def test_lstm_matches_onnxruntime(tmp_path: Path, direction: str, state: bool) -> None:
    import onnxruntime as ort

    path = lstm_model(tmp_path / "lstm.onnx", direction, state)
    rng = np.random.default_rng(8)
    dirs = 2 if direction == "bidirectional" else 1
    x = rng.standard_normal((LSTM_STEPS, 2, LSTM_IN)).astype(np.float32)
    feeds = {"x": x}
    if state:
        h, c = rng.standard_normal((2, dirs, 2, LSTM_HIDDEN)).astype(np.float32)
        feeds |= {"h": h, "c": c}
    module = OnnxModule(onnx.load(str(path)))
    with torch.no_grad():
        got = module.run_all([torch.from_numpy(feeds[n]) for n in module.input_names])
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-6)


def test_an_lstm_with_per_sample_lengths_is_refused_naming_them(tmp_path: Path) -> None:
    model = onnx.load(str(lstm_model(tmp_path / "lstm.onnx")))
    model.graph.node[0].input[4] = "lengths"
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("layout", 1))
    with pytest.raises(UnsupportedPattern, match=r"'lstm' \(LSTM\).*sequence_lens.*layout=1"):
        OnnxModule(model)


def test_the_refusal_lists_the_new_ops() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["y"], name="h")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(UnsupportedPattern) as info:
        OnnxModule(helper.make_model(graph))
    for op in ("Pad", "LSTM", "GlobalMaxPool", "ReduceSum", "Equal", "Reciprocal", "Max"):
        assert f" {op}," in str(info.value) or f" {op})" in str(info.value)
