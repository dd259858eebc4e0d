"""Models whose weights lie inside ``If`` branches (as Silero VAD's, keyed by the sample
rate): INT8 dynamic and FP16 reach them, static INT8 refuses naming the ``If``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress import QuantizeConfig, UnsupportedPattern, quantize
from edgeship.compress.prepare import fold_constants, graphs
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


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


def test_int8_static_refuses_naming_the_if(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, x=_feeds(True)["x"], flag=np.array(True))
    with pytest.raises(UnsupportedPattern, match=r"node 'choose' \(If\).*int8-dynamic does"):
        quantize(base, QuantizeConfig("int8-static"), data, tmp_path / "q.onnx")
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
