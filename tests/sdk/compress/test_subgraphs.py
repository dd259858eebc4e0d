"""Models whose weights lie inside ``If`` branches (as Silero VAD's, keyed by the sample
rate), or in the main graph where only the branches read them (its opset-18 export):
INT8 dynamic and FP16 reach them, static INT8 stores them INT8 with float activations
(refusing, naming the ``If``, where that leaves nothing stored so), and they count as the
model's parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress import QuantizeConfig, UnsupportedPattern, quantize
from edgeship.models.onnx_graph import graphs
from edgeship.models.prepare import fold_constants, prepared, sink_initializers
from edgeship.models.stats import count_parameters
from tests.models import save_graph
from tests.sdk.compress.conftest import HAS_FP16, ort_outputs

FEATURES, HIDDEN, CLASSES = 64, 128, 3  # weights large enough to outweigh the scales


def branchy(path: Path) -> Path:
    """``y = relu(x·W)·V`` with one (W, V) pair per ``If`` branch, chosen by ``flag``; the
    weights are ``Constant`` nodes inside the branches and ``x`` is read from the outer
    scope, as exporters write it."""
    rng = np.random.default_rng(0)

    def constant(name: str, *shape: int) -> onnx.NodeProto:
        value = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))

    def branch(tag: str) -> onnx.GraphProto:
        nodes = [
            constant(f"W_{tag}", FEATURES, HIDDEN),
            constant(f"V_{tag}", HIDDEN, CLASSES),
            helper.make_node("MatMul", ["x", f"W_{tag}"], [f"h_{tag}"], name=f"{tag}/fc1"),
            helper.make_node("Relu", [f"h_{tag}"], [f"a_{tag}"], name=f"{tag}/relu"),
            helper.make_node("MatMul", [f"a_{tag}", f"V_{tag}"], [f"y_{tag}"], name=f"{tag}/fc2"),
        ]
        out = helper.make_tensor_value_info(f"y_{tag}", TensorProto.FLOAT, None)
        return helper.make_graph(nodes, tag, [], [out])

    node = helper.make_node(
        "If", ["flag"], ["y"], name="choose", then_branch=branch("a"), else_branch=branch("b")
    )
    graph = helper.make_graph(
        [node],
        "branchy",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", FEATURES]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", CLASSES])],
    )
    return save_graph(graph, path)


def outer_weights(path: Path) -> Path:
    """``y = relu(x·W_t)·V`` per branch as :func:`branchy`, with the weights main-graph
    initializers that the branches read from the outer scope: ``W_a`` by the ``then``
    branch and by a main-graph node (``side = x·W_a``), ``W_b`` by the ``else`` branch,
    ``V`` by both."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        value = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        return numpy_helper.from_array(value, name)

    def branch(tag: str) -> onnx.GraphProto:
        nodes = [
            helper.make_node("MatMul", ["x", f"W_{tag}"], [f"h_{tag}"], name=f"{tag}/fc1"),
            helper.make_node("Relu", [f"h_{tag}"], [f"a_{tag}"], name=f"{tag}/relu"),
            helper.make_node("MatMul", [f"a_{tag}", "V"], [f"y_{tag}"], name=f"{tag}/fc2"),
        ]
        out = helper.make_tensor_value_info(f"y_{tag}", TensorProto.FLOAT, None)
        return helper.make_graph(nodes, tag, [], [out])

    nodes = [
        helper.make_node(
            "If", ["flag"], ["y"], name="choose", then_branch=branch("a"), else_branch=branch("b")
        ),
        helper.make_node("MatMul", ["x", "W_a"], ["side"], name="side"),
    ]
    graph = helper.make_graph(
        nodes,
        "outer",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", FEATURES]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", CLASSES]),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, ["n", HIDDEN]),
        ],
        [
            weight("W_a", FEATURES, HIDDEN),
            weight("W_b", FEATURES, HIDDEN),
            weight("V", HIDDEN, CLASSES),
        ],
    )
    return save_graph(graph, path)


@pytest.fixture(scope="module")
def outer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return outer_weights(tmp_path_factory.mktemp("outer") / "outer.onnx")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return branchy(tmp_path_factory.mktemp("subgraphs") / "branchy.onnx")


def _feeds(flag: bool) -> dict[str, np.ndarray]:
    x = np.random.default_rng(7).standard_normal((16, FEATURES)).astype(np.float32)
    return {"x": x, "flag": np.array(flag)}


def _ops(path: Path) -> list[str]:
    return [n.op_type for g in graphs(onnx.load(str(path)).graph) for n in g.node]


def _same_on_both_branches(base: Path, out: Path, rtol: float) -> None:
    for flag in (True, False):
        want, got = ort_outputs(base, _feeds(flag)), ort_outputs(out, _feeds(flag))
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= rtol * np.abs(want).max(), flag


def test_branch_constants_become_branch_initializers(base: Path) -> None:
    model = onnx.load(str(base))
    assert fold_constants(model) == 4
    branches = list(graphs(model.graph))[1:]
    assert sorted(sorted(t.name for t in g.initializer) for g in branches) == [
        ["V_a", "W_a"],
        ["V_b", "W_b"],
    ]
    assert "Constant" not in [n.op_type for g in branches for n in g.node]


def test_int8_dynamic_quantizes_the_weights_inside_the_branches(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    rec = quantize(base, QuantizeConfig("int8-dynamic"), None, out).report
    assert sorted(rec.details["quantized_nodes"]) == ["a/fc1", "a/fc2", "b/fc1", "b/fc2"]
    assert _ops(out).count("MatMulInteger") == 4 and "MatMul" not in _ops(out)
    assert rec.model.size_bytes < rec.base.size_bytes
    _same_on_both_branches(base, out, rtol=0.1)


def test_int8_dynamic_keeps_an_excluded_branch_node_float(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    config = QuantizeConfig("int8-dynamic", exclude_nodes=("a/fc2",))
    rec = quantize(base, config, None, out).report
    assert "a/fc2" not in rec.details["quantized_nodes"]
    assert _ops(out).count("MatMulInteger") == 3


def test_int8_static_stores_the_branch_weights_int8(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, x=_feeds(True)["x"], flag=np.array(True))
    out = tmp_path / "q.onnx"
    rec = quantize(base, QuantizeConfig("int8-static"), data, out).report
    assert sorted(rec.details["weight_only_nodes"]) == ["a/fc1", "a/fc2", "b/fc1", "b/fc2"]
    assert any("4 node(s) inside If/Loop branches" in n for n in rec.notes)
    branch_weights = [t for g in list(graphs(onnx.load(str(out)).graph))[1:] for t in g.initializer]
    assert sum(t.data_type == TensorProto.INT8 for t in branch_weights) == 4
    assert rec.model.size_bytes < 0.4 * rec.base.size_bytes
    _same_on_both_branches(base, out, rtol=0.05)


def test_int8_static_refuses_branches_with_nothing_to_store_int8(
    base: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, x=_feeds(True)["x"], flag=np.array(True))
    config = QuantizeConfig("int8-static", exclude_op_types=("MatMul",))
    with pytest.raises(UnsupportedPattern, match=r"node 'choose' \(If\).*int8-dynamic does"):
        quantize(base, config, data, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.skipif(not HAS_FP16, reason="needs the fp16 extra (onnxconverter-common)")
def test_fp16_converts_the_branches_and_casts_outer_inputs_for_them(
    base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "h.onnx"
    rec = quantize(base, QuantizeConfig("fp16"), None, out).report
    model = onnx.load(str(out))
    branch_weights = [t for g in list(graphs(model.graph))[1:] for t in g.initializer]
    assert branch_weights and all(t.data_type == TensorProto.FLOAT16 for t in branch_weights)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert rec.model.size_bytes < rec.base.size_bytes
    _same_on_both_branches(base, out, rtol=0.01)


def test_outer_weights_move_into_the_branches_that_read_them(outer: Path) -> None:
    model = onnx.load(str(outer))
    assert sink_initializers(model) == 3
    held = {g.name: sorted(t.name for t in g.initializer) for g in graphs(model.graph)}
    assert held == {"outer": ["W_a"], "a": ["V", "W_a"], "b": ["V", "W_b"]}  # side reads W_a
    onnx.checker.check_model(model, full_check=True)
    moved = outer.with_name("moved.onnx")
    onnx.save(model, str(moved))
    _same_on_both_branches(outer, moved, rtol=0.0)


def test_preparation_says_what_it_moved(outer: Path) -> None:
    with prepared(outer) as ready:
        assert ready.path != outer and "3 initializer(s) moved into the subgraphs" in ready.note
        assert len(list(graphs(onnx.load(str(ready.path)).graph))[1].initializer) == 2


def test_int8_dynamic_quantizes_branch_nodes_reading_outer_weights(
    outer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "q.onnx"
    rec = quantize(outer, QuantizeConfig("int8-dynamic"), None, out).report
    assert sorted(rec.details["quantized_nodes"]) == ["a/fc1", "a/fc2", "b/fc1", "b/fc2", "side"]
    assert "MatMul" not in _ops(out)
    assert "moved into the subgraphs" in rec.notes[0]
    _same_on_both_branches(outer, out, rtol=0.1)


@pytest.mark.skipif(not HAS_FP16, reason="needs the fp16 extra (onnxconverter-common)")
def test_fp16_converts_branch_nodes_reading_outer_weights(outer: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.onnx"
    rec = quantize(outer, QuantizeConfig("fp16"), None, out).report
    weights = [t for g in graphs(onnx.load(str(out)).graph) for t in g.initializer]
    assert weights and all(t.data_type == TensorProto.FLOAT16 for t in weights)
    assert rec.model.size_bytes < rec.base.size_bytes
    _same_on_both_branches(outer, out, rtol=0.01)


def test_parameters_in_branches_are_counted(base: Path, outer: Path) -> None:
    per_branch = FEATURES * HIDDEN + HIDDEN * CLASSES
    model = onnx.load(str(base))
    assert count_parameters(model)[0] == 2 * per_branch  # Constant nodes in the branches
    fold_constants(model)
    assert count_parameters(model)[0] == 2 * per_branch  # branch initializers
    model = onnx.load(str(outer))
    assert count_parameters(model)[0] == per_branch + FEATURES * HIDDEN
    sink_initializers(model)  # W_a now in the main graph and a branch, V in both
    assert count_parameters(model)[0] == 2 * per_branch + FEATURES * HIDDEN


def recurrent_branch(path: Path) -> Path:
    """``y = LSTM(x)·V`` inside the ``then`` branch of an ``If`` (the ``else`` branch:
    ``x``'s last step ·``U``), as Silero VAD keeps its LSTM; weights are branch
    initializers."""
    rng = np.random.default_rng(5)
    steps, width, hidden = 4, 8, 16

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        value = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        return numpy_helper.from_array(value, name)

    lstm = helper.make_node("LSTM", ["x", "W", "R"], ["", "h"], name="a/lstm", hidden_size=hidden)
    then = helper.make_graph(
        [
            lstm,
            helper.make_node("Squeeze", ["h", "zero"], ["h2"], name="a/squeeze"),
            helper.make_node("MatMul", ["h2", "V"], ["y_a"], name="a/fc"),
        ],
        "a",
        [],
        [helper.make_tensor_value_info("y_a", TensorProto.FLOAT, None)],
        [
            weight("W", 1, 4 * hidden, width),
            weight("R", 1, 4 * hidden, hidden),
            weight("V", hidden, CLASSES),
            numpy_helper.from_array(np.array([0], np.int64), "zero"),
        ],
    )
    other = helper.make_graph(
        [
            helper.make_node("Gather", ["x", "last"], ["x_last"], name="b/last", axis=0),
            helper.make_node("MatMul", ["x_last", "U"], ["y_b"], name="b/fc"),
        ],
        "b",
        [],
        [helper.make_tensor_value_info("y_b", TensorProto.FLOAT, None)],
        [weight("U", width, CLASSES), numpy_helper.from_array(np.array(steps - 1), "last")],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "If", ["flag"], ["y"], name="choose", then_branch=then, else_branch=other
            )
        ],
        "recurrent",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, 2, width]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, CLASSES])],
    )
    return save_graph(graph, path)


def test_weight_only_int8_reaches_a_branch_the_dynamic_quantizer_wrote(tmp_path: Path) -> None:
    """ONNX Runtime's dynamic quantizer writes ``DynamicQuantizeLSTM`` (com.microsoft) into
    the branch without importing that domain: ONNX's checker refuses the model, ONNX Runtime
    runs it. The fallback's weight-only step rewrites it all the same (Silero VAD's
    int8-dynamic was refused on that)."""
    from edgeship.compress.quantization import onnx_int8

    base = recurrent_branch(tmp_path / "recurrent.onnx")
    out = tmp_path / "q.onnx"
    quantize(base, QuantizeConfig("int8-dynamic", exclude_nodes=("a/fc",)), None, out)
    written = {n.op_type for g in graphs(onnx.load(str(out)).graph) for n in g.node}
    assert "DynamicQuantizeLSTM" in written
    assert onnx_int8._weight_only(out, ["a/fc"]) == ["a/fc"]
    rewritten = onnx.load(str(out))
    fc = next(n for g in graphs(rewritten.graph) for n in g.node if n.name == "a/fc")
    assert fc.input[1] == "V_int8_decoded"
    x = np.random.default_rng(6).standard_normal((4, 2, 8)).astype(np.float32)
    feeds = {"x": x, "flag": np.array(True)}
    expected = ort_outputs(base, feeds)
    assert np.max(np.abs(expected)) > 0.1
    np.testing.assert_allclose(ort_outputs(out, feeds), expected, atol=0.05)
