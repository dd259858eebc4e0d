"""Stateful models (a state ``[2, batch, H]`` and a scalar sample rate beside the samples):
their data gives those inputs once per call, and compression runs on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress import CompressOptions, QuantizeConfig, compress, load_dataset
from edgeship.compress._evaluate import first, predict_feeds
from edgeship.core.errors import InputError
from edgeship_runtime.inputs import input_mapping, named_as
from tests.models import save_graph, scaled_weight
from tests.sdk.compress.conftest import ort_outputs

FEATURES, HIDDEN, CLASSES, SAMPLES = 16, 32, 4, 40


def stateful_cell(path: Path) -> Path:
    """``logits = tanh(x·W + state[0]·U) · (sr / 16000) · V``: a GRU-like cell whose output
    depends on all three inputs; weights from a fixed seed."""
    rng = np.random.default_rng(0)
    consts = [
        scaled_weight(rng, "W", FEATURES, HIDDEN),
        scaled_weight(rng, "U", HIDDEN, HIDDEN),
        scaled_weight(rng, "V", HIDDEN, CLASSES),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array(16000.0, np.float32), "rate"),
    ]
    nodes = [
        helper.make_node("Gather", ["state", "zero"], ["h"], axis=0),
        helper.make_node("MatMul", ["input", "W"], ["xw"]),
        helper.make_node("MatMul", ["h", "U"], ["hu"]),
        helper.make_node("Add", ["xw", "hu"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["act"]),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["srf", "rate"], ["scale"]),
        helper.make_node("Mul", ["act", "scale"], ["y"]),
        helper.make_node("MatMul", ["y", "V"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cell",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, FEATURES]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, HIDDEN]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, CLASSES])],
        consts,
    )
    return save_graph(graph, path)


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stateful_cell(tmp_path_factory.mktemp("stateful") / "cell.onnx")


@pytest.fixture(scope="module")
def cell_npz(cell: Path) -> Path:
    rng = np.random.default_rng(1)
    path = cell.with_name("cell.npz")
    np.savez(
        path,
        input=rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32),
        state=rng.standard_normal((2, 1, HIDDEN)).astype(np.float32),
        sr=np.array(8000, np.int64),
    )
    return path


def test_state_and_rate_are_given_once_per_call(cell: Path, cell_npz: Path) -> None:
    data = load_dataset(cell_npz, cell)
    assert data is not None and len(data) == SAMPLES and data.fixed == {"state", "sr"}
    calls = list(data.take(3).batches(32))
    assert len(calls) == 3  # one sample per call: the state's batch dim is the one given
    assert [c["input"].shape for c in calls] == [(1, FEATURES)] * 3
    assert all(c["state"].shape == (2, 1, HIDDEN) and c["sr"].ndim == 0 for c in calls)
    train, held = data.split(0.25)
    assert held is not None and held.fixed == data.fixed and len(train) + len(held) == SAMPLES
    assert data.sample_shape("state") == (2, 1, HIDDEN)
    assert data.sample_shape("input") == (1, FEATURES)


def test_a_first_axis_that_is_neither_samples_nor_per_call_names_the_input(
    cell: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        input=np.zeros((SAMPLES, FEATURES), np.float32),
        state=np.zeros((3, 1, HIDDEN), np.float32),  # the model fixes 2: not per call
        sr=np.array(8000, np.int64),
    )
    with pytest.raises(InputError, match=r"input 'state' \[3, 1, 32\]: its first axis") as err:
        load_dataset(path, cell)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_compress_a_stateful_model_on_its_data(
    cell: Path, cell_npz: Path, tmp_path: Path, method: str
) -> None:
    out = tmp_path / f"cell.{method}.onnx"
    options = CompressOptions(latency=False)
    rec = compress(cell, QuantizeConfig(method), cell_npz, out, options).report
    assert rec.fidelity is not None and rec.fidelity.cosine is not None
    assert rec.fidelity.cosine > 0.99 and rec.fidelity.max_abs_diff > 0
    assert rec.details["quantized_nodes"]
    with np.load(cell_npz) as npz:  # the result, in plain ONNX Runtime, on one call
        feeds = {"input": npz["input"][:1], "state": npz["state"], "sr": npz["sr"]}
    base, new = ort_outputs(cell, feeds), ort_outputs(out, feeds)
    assert new.shape == base.shape == (1, CLASSES)
    assert np.allclose(new, base, atol=0.1 * np.abs(base).max())


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_data_in_another_order_than_the_inputs_goes_by_name(
    cell: Path, tmp_path: Path, method: str
) -> None:
    """Silero's two exports take ``state`` and ``sr`` in opposite orders, and one .npz
    serves both: its arrays go to the inputs of the same names, not by position (which
    fed the state to ``sr``: "dtype float32, expected int64")."""
    rng = np.random.default_rng(2)
    data = tmp_path / "reordered.npz"
    np.savez(
        data,
        sr=np.array(16000, np.int64),
        input=rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32),
        state=rng.standard_normal((2, 1, HIDDEN)).astype(np.float32),
    )
    out = tmp_path / f"cell.{method}.onnx"
    rec = compress(cell, QuantizeConfig(method), data, out, CompressOptions(latency=False)).report
    assert rec.verified_on == "local"
    assert rec.fidelity is not None and (rec.fidelity.cosine or 0.0) > 0.99
    with np.load(data) as npz:  # in the file's order: sr, input, state
        feeds = {k: npz[k][:1] if k == "input" else npz[k] for k in npz.files}
    assert list(feeds) == ["sr", "input", "state"]
    assert np.allclose(
        first(predict_feeds(out, [feeds])), first(predict_feeds(cell, [feeds])), atol=0.1
    )


def test_differently_named_data_goes_by_position() -> None:
    assert input_mapping(["a", "b"], ["b", "a"]) == {"a": "a", "b": "b"}
    assert input_mapping(["x", "k"], ["serving_default_x:0", "serving_default_k:0"]) == {
        "x": "serving_default_x:0",
        "k": "serving_default_k:0",
    }
    feeds = {"state": np.zeros((2, 1, 4), np.float32), "sr": np.array(8000)}
    assert list(named_as(feeds, ["sr", "state"])) == ["sr", "state"]
