"""Stage planning on tiny graphs: passthrough, early outputs, constants, control flow."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeship.core.errors import PartitionError
from edgeship.partition._cost import bind_inputs, crossing_bytes, flop_costs, known_shapes
from edgeship.partition._graph import (
    analyse,
    check_stages,
    outer_references,
    plan_stages,
    stage_model,
    value_types,
)
from tests.sdk.convert import graphs


def _run_chain(info, plans, feeds):  # type: ignore[no-untyped-def]
    types = value_types(info.model)
    env = dict(feeds)
    for plan in plans:
        model = stage_model(info, plan, types)
        onnx.checker.check_model(model, full_check=True)
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        assert [i.name for i in session.get_inputs()] == plan.inputs
        outs = session.run(None, {n: env[n] for n in plan.inputs})
        env = dict(zip(plan.outputs, outs, strict=True))
    return env


def test_skip_connection_and_early_output_pass_through(tmp_path: Path) -> None:
    info = analyse(onnx.load(str(graphs.residual_model(tmp_path / "r.onnx"))))
    assert len(info.units) == 8
    plans = plan_stages(info, [2, 4, 6])  # [mm1 relu1] [mm2 relu2] [mm3 skip] [relu3 mm4]
    assert plans[0].inputs == ["x"] and plans[0].outputs == ["x", "a"]
    assert plans[1].inputs == ["x", "a"] and plans[1].outputs == ["x", "a", "b"]
    assert plans[1].passthrough == ["x", "a"]
    assert plans[2].outputs == ["a", "c"]  # x is used up; a is a model output
    assert plans[3].outputs == ["y", "a"]  # the model's outputs, in its order
    for previous, plan in itertools.pairwise(plans):
        assert plan.inputs == previous.outputs
    x = np.random.default_rng(0).standard_normal((3, graphs.WIDTH)).astype(np.float32)
    want = ort.InferenceSession(
        info.model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, {"x": x})
    got = _run_chain(info, plans, {"x": x})
    assert np.allclose(got["y"], want[0]) and np.allclose(got["a"], want[1])


def test_constants_are_copied_into_each_stage(tmp_path: Path) -> None:
    info = analyse(onnx.load(str(graphs.constant_model(tmp_path / "c.onnx"))))
    assert len(info.units) == 3 and "k" in info.constants
    plans = plan_stages(info, [1, 2])
    assert all("k" not in p.outputs for p in plans)  # never passed: re-made where read
    assert [len(p.nodes) for p in plans] == [2, 1, 2]
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    got = _run_chain(info, plans, {"x": x})["y"]
    assert np.allclose(got, np.maximum(x + 0.5, 0) * 0.5)


def test_control_flow_is_held_whole(tmp_path: Path) -> None:
    info = analyse(onnx.load(str(graphs.if_model(tmp_path / "if.onnx"))))
    assert info.control_flow == ["branch"] and info.needs[0] == ["cond", "x"]
    assert outer_references(info.nodes[0].attribute[0].g) == {"x"}
    check_stages(info, 1)
    with pytest.raises(
        PartitionError,
        match=r"--stages 2 is more than this graph allows: it "
        r"has 1 node\(s\).*does not cut inside If/Loop/Scan",
    ):
        check_stages(info, 2)


def test_flops_and_crossing_bytes(zoo) -> None:
    info = analyse(onnx.load(str(zoo.path("cnn.onnx"))))
    shapes, itemsize = known_shapes(bind_inputs(info.model, {}))
    assert shapes["input"] == (1, 1, 8, 8)
    costs = flop_costs(info, shapes)
    convs = [c for i, c in zip(info.units, costs, strict=True) if info.nodes[i].op_type == "Conv"]
    assert convs == [2 * 64 * 96 * 9] + [2 * 64 * 96 * 96 * 9] * 4  # stem, 2 residual blocks
    cross = crossing_bytes(info, shapes, itemsize)
    assert cross[0] == 64 * 4  # the input, float32
    assert cross[1] == 96 * 64 * 4  # after the first conv: 96 channels of 8x8


def test_unnamed_and_unsorted_nodes_are_fixed(tmp_path: Path) -> None:
    model = onnx.load(str(graphs.residual_model(tmp_path / "r.onnx")))
    nodes = list(model.graph.node)
    for node in nodes:
        node.name = ""
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    info = analyse(model)
    assert [n.op_type for n in info.nodes][:2] == ["MatMul", "Relu"]
    assert len({n.name for n in info.nodes}) == len(nodes)
