from __future__ import annotations

from pathlib import Path

import onnx

from edgeship.compress.prune.channel_groups import find_groups
from tools.zoo.build import Manifest


def test_cnn_groups_flatten_blocks_and_the_output_layer(zoo: Manifest) -> None:
    groups = {g.layers[0]: g for g in find_groups(onnx.load(str(zoo.path("cnn.onnx"))))}
    assert [k for k, g in groups.items() if not g.blocked] == [
        "/0/Conv",
        "/3/body/body.0/Conv",
        "/4/body/body.0/Conv",
        "/7/Gemm",
    ]
    # the stem and the last conv of each residual block add into one another: one group
    tied = groups["/0/Conv"]
    assert tied.layers == ["/0/Conv", "/3/body/body.3/Conv", "/4/body/body.3/Conv"]
    flat = [s for s in tied.slices if s.role == "consumer" and s.block > 1]
    assert [(s.array, s.axis, s.block) for s in flat] == [("7.weight", 1, 16)]
    assert "model output" in (groups["/9/Gemm"].blocked or "")


def test_residual_add_ties_both_convs(patterns: dict[str, Path]) -> None:
    groups = find_groups(onnx.load(str(patterns["residual"])))
    tied = next(g for g in groups if "conv_a" in g.layers)
    assert tied.blocked is None
    assert set(tied.layers) == {"conv_a", "conv_b"} and tied.regroup == ["conv_dw"]
    arrays = {s.array for s in tied.slices}
    assert {"a_w", "b_w", "bn_s", "bn_v", "dw_w", "scale", "fc_w"} <= arrays


def test_concat_is_refused_with_the_node_named(patterns: dict[str, Path]) -> None:
    groups = {g.layers[0]: g for g in find_groups(onnx.load(str(patterns["concat"])))}
    assert "'cat' (Concat)" in (groups["conv_a"].blocked or "")
    assert groups["conv_c"].blocked is None


def test_an_array_shared_between_groups_blocks_them(tmp_path: Path) -> None:
    """Two hidden layers whose biases a simplifier merged into one initializer (cloned
    layers start equal): slicing it for one would break the other."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = []
    for i in (1, 2):
        x = "x" if i == 1 else "o1"
        nodes += [
            helper.make_node("MatMul", [x, f"up{i}"], [f"h{i}"], name=f"up{i}"),
            helper.make_node("Add", [f"h{i}", "bias"], [f"b{i}"], name=f"add{i}"),
            helper.make_node("Relu", [f"b{i}"], [f"r{i}"], name=f"relu{i}"),
            helper.make_node("MatMul", [f"r{i}", f"down{i}"], [f"o{i}"], name=f"down{i}"),
        ]
    inits = [w("up1", 4, 8), w("down1", 8, 4), w("up2", 4, 8), w("down2", 8, 4), w("bias", 8)]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("o2", TensorProto.FLOAT, ["n", 4])],
        inits,
    )
    groups = {g.layers[0]: g for g in find_groups(helper.make_model(graph))}
    assert "'bias' is shared" in (groups["up1"].blocked or "")
    assert "'bias' is shared" in (groups["up2"].blocked or "")
