"""Tiny ONNX graphs for channel-pruning patterns (residual, concat, depthwise), built with
``onnx.helper`` at opset 17; weights from a fixed seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.models import save_graph

CHANNELS = 8
IN_CHANNELS = 4
SIDE = 6
CLASSES = 3


def _init(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)


def _save(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], path: Path) -> Path:
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", IN_CHANNELS, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", CLASSES])],
        inits,
    )
    return save_graph(graph, path)


def _head(
    rng: np.random.Generator, src: str, inits: list[onnx.TensorProto]
) -> list[onnx.NodeProto]:
    inits += [_init(rng, "fc_w", CLASSES, CHANNELS), _init(rng, "fc_b", CLASSES)]
    return [
        helper.make_node("GlobalAveragePool", [src], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]


def residual(path: Path) -> Path:
    """conv_a → relu → (conv_b → bn) + skip → relu → [dw conv] → GAP → Flatten → Gemm."""
    rng = np.random.default_rng(0)
    c = CHANNELS
    inits = [
        _init(rng, "a_w", c, IN_CHANNELS, 3, 3),
        _init(rng, "a_b", c),
        _init(rng, "b_w", c, c, 3, 3),
        _init(rng, "b_b", c),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "bn_s"),
        _init(rng, "bn_b", c),
        _init(rng, "bn_m", c),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "bn_v"),
        _init(rng, "dw_w", c, 1, 3, 3),
        _init(rng, "dw_b", c),
        _init(rng, "scale", 1, c, 1, 1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "a_w", "a_b"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
        helper.make_node("Conv", ["ar", "b_w", "b_b"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["b", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"
        ),
        helper.make_node("Add", ["bn", "ar"], ["sum"], name="add"),
        helper.make_node("Relu", ["sum"], ["sr"], name="relu_sum"),
        helper.make_node(
            "Conv", ["sr", "dw_w", "dw_b"], ["dw"], name="conv_dw", group=c, pads=[1, 1, 1, 1]
        ),
        helper.make_node("Mul", ["dw", "scale"], ["scaled"], name="mul_scale"),
    ]
    return _save(nodes + _head(rng, "scaled", inits), inits, path)


def concat(path: Path) -> Path:
    """Two convs concatenated (refused: Concat), then a 1x1 conv and the head."""
    rng = np.random.default_rng(1)
    half = CHANNELS // 2
    inits = [
        _init(rng, "a_w", half, IN_CHANNELS, 1, 1),
        _init(rng, "b_w", half, IN_CHANNELS, 1, 1),
        _init(rng, "c_w", CHANNELS, CHANNELS, 1, 1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "a_w"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["x", "b_w"], ["b"], name="conv_b"),
        helper.make_node("Concat", ["a", "b"], ["ab"], name="cat", axis=1),
        helper.make_node("Conv", ["ab", "c_w"], ["c"], name="conv_c"),
        helper.make_node("Relu", ["c"], ["cr"], name="relu_c"),
    ]
    return _save(nodes + _head(rng, "cr", inits), inits, path)


def only_output_layer(path: Path) -> Path:
    """GAP → Flatten → Gemm: the only weighted layer produces the output (nothing to prune)."""
    rng = np.random.default_rng(2)
    inits: list[onnx.TensorProto] = [
        _init(rng, "fc_w", CLASSES, IN_CHANNELS),
        _init(rng, "fc_b", CLASSES),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return _save(nodes, inits, path)


def sample_inputs(n: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((n, IN_CHANNELS, SIDE, SIDE))
    return {"x": x.astype(np.float32)}


def wrong_student() -> object:
    """A torch student whose 3 outputs cannot match a 10-class teacher."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def shape_ops(path: Path) -> Path:
    """The shape arithmetic of field exports (PaddleOCR's recogniser, torch's attention):
    ``x [n, 4, 6, 6]`` → ConvTranspose ×2 → Resize ×0.5 → ``Shape``/``Gather``/
    ``Unsqueeze``/``Concat`` → Reshape ``[n, 4, 36]`` → Slice → Pow/Sqrt/ReduceMean →
    Squeeze → Cast → ``y [n, 4]``."""
    rng = np.random.default_rng(3)
    inits = [
        _init(rng, "up_w", IN_CHANNELS, IN_CHANNELS, 2, 2),
        numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], np.float32), "scales"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([IN_CHANNELS, -1], np.int64), "tail"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        numpy_helper.from_array(np.array([1], np.int64), "start"),
        numpy_helper.from_array(np.array([30], np.int64), "end"),
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    nodes = [
        helper.make_node("ConvTranspose", ["x", "up_w"], ["up"], strides=[2, 2]),
        helper.make_node("Resize", ["up", "", "scales"], ["down"], mode="nearest"),
        helper.make_node("Shape", ["down"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "tail"], ["target"], axis=0),
        helper.make_node("Reshape", ["down", "target"], ["flat"]),
        helper.make_node("Slice", ["flat", "start", "end", "axis2"], ["part"]),
        helper.make_node("Pow", ["part", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[2], keepdims=1),
        helper.make_node("Sqrt", ["ms"], ["rms"]),
        helper.make_node("Squeeze", ["rms", "axis2"], ["sq2"]),
        helper.make_node("Cast", ["sq2"], ["y"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", IN_CHANNELS, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", IN_CHANNELS])],
        inits,
    )
    return save_graph(graph, path)


def decomposed_norm(path: Path) -> Path:
    """A layer norm as field exports write it (PaddleOCR's recogniser): ``x [n, 8]`` →
    MatMul ``w`` → ``d = h − mean(h)`` → ``d / sqrt(mean(Pow(d, two)) + eps)`` → Mul
    ``gamma`` → ``y [n, 8]``. ``two`` and ``eps`` are float initializers that set the ops,
    not weights: ``Pow(d, 2.001)`` is NaN wherever ``d < 0``."""
    rng = np.random.default_rng(4)
    inits = [
        _init(rng, "w", 8, 8),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
        numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "gamma"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("ReduceMean", ["h"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["h", "m"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[1], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["d", "sd"], ["normed"]),
        helper.make_node("Mul", ["normed", "gamma"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        inits,
    )
    return save_graph(graph, path)


def weightless_output_and_mask(path: Path) -> Path:
    """``x [n, 4]`` → Gemm ``fc`` → ``y [n, 3]``, and ``mask = Equal(x, x)``: no layer
    can lose channels (fc produces the output), and Equal has no torch view."""
    rng = np.random.default_rng(5)
    inits = [_init(rng, "fc_w", CLASSES, IN_CHANNELS), _init(rng, "fc_b", CLASSES)]
    nodes = [
        helper.make_node("Gemm", ["x", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
        helper.make_node("Equal", ["x", "x"], ["mask"], name="same"),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", IN_CHANNELS])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", CLASSES]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["n", IN_CHANNELS]),
        ],
        inits,
    )
    return save_graph(graph, path)


def split_log_max(path: Path) -> Path:
    """``x [n, 6, 4]`` split by sizes ``[2, 4]`` (an input) on axis 1, the second part split
    in two equal halves (no sizes), ``log(exp(a) + max over axis 2 of b)``: YOLOv8's C2f
    splits and a log-mel front-end's ``Log`` and ``ReduceMax``."""
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "rest"], name="split", axis=1),
        helper.make_node("Split", ["rest"], ["b", "c"], name="halves", axis=1),
        helper.make_node("ReduceMax", ["b"], ["m"], name="max", axes=[2], keepdims=1),
        helper.make_node("Exp", ["a"], ["e"], name="exp"),
        helper.make_node("Add", ["e", "m"], ["s"], name="add"),
        helper.make_node("Add", ["s", "c"], ["t"], name="add_c"),
        helper.make_node("Exp", ["t"], ["u"], name="exp_t"),
        helper.make_node("Log", ["u"], ["y"], name="log"),
    ]
    graph = helper.make_graph(
        nodes,
        "split_log_max",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 4])],
        [numpy_helper.from_array(np.array([2, 4], np.int64), "sizes")],
    )
    return save_graph(graph, path)


def anchors(path: Path) -> Path:
    """YOLOv8's anchor arithmetic at a dynamic side: ``Range`` over the width of ``x``,
    ``ConstantOfShape`` of its shape, ``Expand`` of the row to ``[n, 1, w]``, added to ``x``."""

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "last"], ["w"], name="w", axis=0),
        helper.make_node("Range", ["zero", "w", "one"], ["steps"], name="range"),
        helper.make_node("Cast", ["steps"], ["row"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Expand", ["row", "shape"], ["grid"], name="expand"),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["half"],
            name="fill",
            value=const("v", np.array([0.5], np.float32)),
        ),
        helper.make_node("Add", ["x", "grid"], ["s"], name="add"),
        helper.make_node("Add", ["s", "half"], ["y"], name="add_half"),
    ]
    graph = helper.make_graph(
        nodes,
        "anchors",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "w"])],
        [
            const("last", np.array(2, np.int64)),
            const("zero", np.array(0, np.int64)),
            const("one", np.array(1, np.int64)),
        ],
    )
    return save_graph(graph, path)


def pad(path: Path, mode: str, pads: str = "initializer") -> Path:
    """``x [n, 3, 8]`` padded by (0, 1, 2) before and (0, 2, 3) after in ``mode``, then
    scaled by a weight: ``pads`` an ``initializer``, ``computed`` (a Concat of two halves,
    as Silero casts its pads) or the ``attribute`` of opset 10 and older."""
    rng = np.random.default_rng(8)
    before, after = [0, 1, 2], [0, 2, 3]
    inits = [_init(rng, "scale", 1, 1, 8 + 2 + 3)]
    nodes = [helper.make_node("Mul", ["padded", "scale"], ["y"], name="scale")]
    if pads == "attribute":
        nodes.insert(0, helper.make_node("Pad", ["x"], ["padded"], mode=mode, pads=before + after))
    else:
        source = "pads" if pads == "initializer" else "joined"
        nodes.insert(0, helper.make_node("Pad", ["x", source], ["padded"], name="pad", mode=mode))
        halves = {"pads": before + after} if pads == "initializer" else {"b": before, "a": after}
        inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in halves.items()]
        if pads == "computed":
            nodes.insert(0, helper.make_node("Concat", ["b", "a"], ["joined"], axis=0))
    graph = helper.make_graph(
        nodes,
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3 + 1 + 2, 8 + 2 + 3])],
        inits,
    )
    return save_graph(graph, path, opset=10 if pads == "attribute" else 17)


def reductions(path: Path) -> Path:
    """Magika's ops on ``x [n, 3, 5]``: GlobalMaxPool, ReduceSum, a three-way Max, Min,
    Reciprocal and an Equal mask (where each row reaches its maximum), cast to float."""
    nodes = [
        helper.make_node("GlobalMaxPool", ["x"], ["g"]),
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        helper.make_node("Max", ["g", "s", "half"], ["m"]),
        helper.make_node("Mul", ["m", "m"], ["m2"]),
        helper.make_node("Add", ["m2", "half"], ["d"]),
        helper.make_node("Reciprocal", ["d"], ["r"]),
        helper.make_node("Equal", ["x", "g"], ["top"]),
        helper.make_node("Cast", ["top"], ["topf"], to=TensorProto.FLOAT),
        helper.make_node("Min", ["x", "g"], ["low"]),
        helper.make_node("Mul", ["topf", "r"], ["marked"]),
        helper.make_node("Add", ["marked", "low"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "reductions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 5])],
        [
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        ],
    )
    return save_graph(graph, path)
