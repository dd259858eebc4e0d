"""Tiny ONNX graphs for conversion, optimization and partitioning edge cases.

Written with ``onnx.helper`` at IR 8 / opset 17 like :mod:`tests.models`; each builder
writes one file and returns its path. Weights come from fixed seeds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.models import save_graph as save

WIDTH = 16


def _w(name: str, shape: tuple[int, ...], seed: int) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array((rng.standard_normal(shape) / 4).astype(np.float32), name)


def _v(name: str, shape: list[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def foldable_model(path: str | os.PathLike[str], width: int = WIDTH) -> Path:
    """``y = relu(x @ (A @ B + C))``: ``A @ B + C`` is constant (foldable), and a dead
    ``Sigmoid`` branch computes something nobody reads."""
    nodes = [
        helper.make_node("MatMul", ["A", "B"], ["AB"], name="const_matmul"),
        helper.make_node("Add", ["AB", "C"], ["W"], name="const_add"),
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["h"], ["unused"], name="dead"),
    ]
    graph = helper.make_graph(
        nodes,
        "foldable",
        [_v("x", ["batch", width])],
        [_v("y", ["batch", width])],
        initializer=[
            _w("A", (width, width), 1),
            _w("B", (width, width), 2),
            _w("C", (width, width), 3),
        ],
    )
    return save(graph, path)


def int64_ids_model(path: str | os.PathLike[str], width: int = 4) -> Path:
    """``y = float(ids) @ W`` on int64 token ids, as a text model takes them (TFLite
    takes int32 instead)."""
    nodes = [
        helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("MatMul", ["f", "W"], ["y"], name="matmul"),
    ]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", width])
    graph = helper.make_graph(
        nodes, "ids", [ids], [_v("y", ["batch", width])], initializer=[_w("W", (width, width), 4)]
    )
    return save(graph, path)


def residual_model(path: str | os.PathLike[str], width: int = WIDTH) -> Path:
    """Six nodes with a skip connection over three of them and an early second output:

    ``a = relu(x @ W1)``, ``b = relu(a @ W2)``, ``c = b @ W3 + x`` (x skips ahead),
    ``y = relu(c) @ W4``; outputs ``y`` and ``a`` (produced first, needed at the end).
    """
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["m1"], name="mm1"),
        helper.make_node("Relu", ["m1"], ["a"], name="relu1"),
        helper.make_node("MatMul", ["a", "W2"], ["m2"], name="mm2"),
        helper.make_node("Relu", ["m2"], ["b"], name="relu2"),
        helper.make_node("MatMul", ["b", "W3"], ["m3"], name="mm3"),
        helper.make_node("Add", ["m3", "x"], ["c"], name="skip"),
        helper.make_node("Relu", ["c"], ["r"], name="relu3"),
        helper.make_node("MatMul", ["r", "W4"], ["y"], name="mm4"),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [_v("x", ["batch", width])],
        [_v("y", ["batch", width]), _v("a", ["batch", width])],
        initializer=[_w(f"W{i}", (width, width), 10 + i) for i in range(1, 5)],
    )
    return save(graph, path)


def constant_model(path: str | os.PathLike[str], width: int = 4) -> Path:
    """A ``Constant`` read by the first and the last node: each stage gets its own copy."""
    value = numpy_helper.from_array(np.full((width,), 0.5, np.float32), "k")
    nodes = [
        helper.make_node("Constant", [], ["k"], value=value, name="k"),
        helper.make_node("Add", ["x", "k"], ["p"], name="add"),
        helper.make_node("Relu", ["p"], ["q"], name="relu"),
        helper.make_node("Mul", ["q", "k"], ["y"], name="mul"),
    ]
    graph = helper.make_graph(
        nodes, "constant", [_v("x", ["batch", width])], [_v("y", ["batch", width])]
    )
    return save(graph, path)


def if_model(path: str | os.PathLike[str], width: int = 4) -> Path:
    """``y = If(cond, then: relu(x), else: -x)``: one node, two subgraphs reading ``x``."""
    then_graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])], "then", [], [_v("t", ["batch", width])]
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [_v("e", ["batch", width])]
    )
    nodes = [
        helper.make_node(
            "If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph, name="branch"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "control",
        [_v("x", ["batch", width]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [_v("y", ["batch", width])],
    )
    return save(graph, path)


def hardmax_model(path: str | os.PathLike[str], width: int = 4) -> Path:
    """``y = Hardmax(x @ W)``: onnx2torch has no converter for Hardmax."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Hardmax", ["h"], ["y"], name="hardmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "hardmax",
        [_v("x", ["batch", width])],
        [_v("y", ["batch", width])],
        initializer=[_w("W", (width, width), 5)],
    )
    return save(graph, path)


def nchw_model(path: str | os.PathLike[str], channels: int = 3, size: int = 4) -> Path:
    """``y = x * 2`` on an NCHW image ``[batch, C, H, W]``."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"], name="mul")],
        "nchw",
        [_v("x", ["batch", channels, size, size])],
        [_v("y", ["batch", channels, size, size])],
        initializer=[two],
    )
    return save(graph, path)


def field_reshape_model(path: str | os.PathLike[str], side: int | str = "side") -> Path:
    """A Paddle-style head: ``Constant`` weights, ``Reshape`` to a constant shape with a 0
    (copy) dim, a nearest ``Resize`` by constant scales. ``x [batch, 2, S, S]`` → Conv →
    Resize ×2 → ``m [batch, 2, 2S, 2S]`` (a map), and → Reshape ``[0, -1]`` → MatMul →
    ``y [batch, 3]`` (class scores; the MatMul fits S = 4 only)."""
    rng = np.random.default_rng(11)
    w = numpy_helper.from_array(rng.standard_normal((2, 2, 1, 1)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((32, 3)).astype(np.float32), "fc")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=w),
        helper.make_node("Constant", [], ["fc"], value=fc),
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("Constant", [], ["scales"], value=scales),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Resize", ["c", "", "scales"], ["m"], name="resize", mode="nearest"),
        helper.make_node("Reshape", ["c", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "fc"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "field_reshape",
        [_v("x", ["batch", 2, side, side])],
        [_v("m", ["batch", 2, None, None]), _v("y", ["batch", 3])],
    )
    return save(graph, path)


def computed_clip_model(path: str | os.PathLike[str], width: int = WIDTH) -> Path:
    """``h = x·W``, clipped below at its maximum less 3 (a computed bound, as a log-mel
    front-end's top-dB floor) and above at a constant 2: ``y [1, width]``."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
            helper.make_node("ReduceMax", ["h"], ["top"], name="top", keepdims=0),
            helper.make_node("Sub", ["top", "db"], ["floor"], name="floor"),
            helper.make_node("Clip", ["h", "floor", "ceiling"], ["y"], name="clip"),
        ],
        "computed_clip",
        [_v("x", [1, width])],
        [_v("y", [1, width])],
        [
            _w("w", (width, width), 7),
            numpy_helper.from_array(np.array(3.0, np.float32), "db"),
            numpy_helper.from_array(np.array(2.0, np.float32), "ceiling"),
        ],
    )
    return save(graph, path)


def global_max_pool_model(path: str | os.PathLike[str], channels: int = 3, size: int = 4) -> Path:
    """``y = GlobalMaxPool(x) · w``, ``x [1, channels, size, size]`` (Magika pools so)."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalMaxPool", ["x"], ["m"], name="pool"),
            helper.make_node("Mul", ["m", "w"], ["y"], name="scale"),
        ],
        "global_max_pool",
        [_v("x", [1, channels, size, size])],
        [_v("y", [1, channels, 1, 1])],
        [_w("w", (1, channels, 1, 1), 9)],
    )
    return save(graph, path)


def split_model(path: str | os.PathLike[str], channels: int = 6, size: int = 4) -> Path:
    """``x [1, channels, size, size]`` split on the channels at constant sizes given as a
    tensor (opset 13, as YOLOv8's head splits its boxes from its scores), each part
    scaled and joined again."""
    sizes = numpy_helper.from_array(np.array([2, channels - 2], np.int64), "sizes")
    graph = helper.make_graph(
        [
            helper.make_node("Split", ["x", "sizes"], ["a", "b"], name="split", axis=1),
            helper.make_node("Sigmoid", ["b"], ["s"], name="sigmoid"),
            helper.make_node("Mul", ["a", "w"], ["m"], name="scale"),
            helper.make_node("Concat", ["m", "s"], ["y"], name="join", axis=1),
        ],
        "split",
        [_v("x", [1, channels, size, size])],
        [_v("y", [1, channels, size, size])],
        [_w("w", (1, 2, 1, 1), 4), sizes],
    )
    return save(graph, path)
