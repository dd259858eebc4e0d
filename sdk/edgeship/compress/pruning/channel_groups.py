"""Which channels of an ONNX graph can be removed together, and what must shrink with them.

A *group* is a set of tied channels: the output channels of one Conv/Gemm/MatMul, or of
several when an elementwise Add/Mul joins their outputs (residual blocks). Removing
channel ``c`` of a group slices every array listed in its :class:`Slice` s: producer
weights and biases (output axis), BatchNorm parameters, depthwise Conv weights, per-channel
constants of elementwise ops, and the consumers' weights (input axis; after a Flatten of an
NCHW tensor, the ``H·W`` features of each channel). A group is *blocked*, with the reason,
when any tensor of it reaches something that cannot be adjusted (a model output, Concat,
Reshape, a grouped Conv, ...). Attention decomposed into Reshape/Transpose and MatMuls of
two activations is not pruned here: its head layout lives in shape constants; the reason
says so (heads are removed on the torch model, :mod:`.heads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeship.models import onnx_graph

__all__ = ["ELEMENTWISE", "LINEAR", "PASS_THROUGH", "Group", "Slice", "find_groups"]

PASS_THROUGH = {
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "HardSwish",
    "HardSigmoid",
    "Elu",
    "Selu",
    "Softplus",
    "Identity",
    "Dropout",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "PRelu"}
LINEAR = ("Conv", "Gemm", "MatMul")


@dataclass
class Slice:
    """An initializer that loses entries along ``axis`` when its group loses channels."""

    array: str
    axis: int
    block: int = 1
    role: str = "producer"  # producer | consumer | adjust


@dataclass
class Group:
    layers: list[str]
    channels: int
    axis: int
    slices: list[Slice] = field(default_factory=list)
    feeds: list[tuple[str, int]] = field(default_factory=list)  # (tensor, channel axis)
    regroup: list[str] = field(default_factory=list)  # depthwise Convs: group = channels
    blocked: str | None = None


class _Spaces:
    """Union-find over groups: Add/Mul merge the channel spaces of their inputs."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.groups: list[Group] = []

    def new(self, group: Group) -> int:
        self.parent.append(len(self.parent))
        self.groups.append(group)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def group(self, i: int) -> Group:
        return self.groups[self.find(i)]

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            ga, gb = self.groups[ra], self.groups[rb]
            ga.layers += gb.layers
            ga.slices += gb.slices
            ga.feeds += gb.feeds
            ga.regroup += gb.regroup
            ga.blocked = ga.blocked or gb.blocked
            if ga.channels != gb.channels:
                ga.blocked = ga.blocked or f"joined groups differ ({ga.channels}/{gb.channels})"
            self.parent[rb] = ra
        return ra

    def block(self, i: int, reason: str) -> None:
        group = self.group(i)
        group.blocked = group.blocked or reason

    def roots(self) -> list[Group]:
        return [g for i, g in enumerate(self.groups) if self.find(i) == i]


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _shapes(model: Any) -> dict[str, list[Any]]:
    """Tensor name → dims (int or None) after ONNX shape inference."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    out = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return out


def find_groups(model: Any) -> list[Group]:
    """Every channel group of ``model``; blocked ones carry the reason."""
    finder = _Finder(model)
    for node in model.graph.node:
        finder.visit(node)
    for out in model.graph.output:
        space = finder.space_of.get(out.name, finder.flat_of.get(out.name, (None, 0))[0])
        if space is not None:
            finder.spaces.block(space, f"it produces the model output {out.name!r}")
    groups = finder.spaces.roots()
    _block_shared(groups)
    return groups


def _block_shared(groups: list[Group]) -> None:
    """Block groups that would slice one array along the same axis differently (an
    initializer shared between groups, e.g. the biases a simplifier merged because cloned
    layers start equal); a weight's output and input axes belong to two groups rightly."""
    owners: dict[tuple[str, int], list[Group]] = {}
    for group in groups:
        for key in {(s.array, s.axis) for s in group.slices}:
            owners.setdefault(key, []).append(group)
    for (name, _), sharing in owners.items():
        if len(sharing) > 1:
            for group in sharing:
                group.blocked = group.blocked or f"its array {name!r} is shared with another layer"


class _Finder:
    def __init__(self, model: Any) -> None:
        self.values = onnx_graph.arrays(model)
        self.shapes = _shapes(model)
        self.uses = onnx_graph.consumers(model)
        self.spaces = _Spaces()
        self.space_of: dict[str, int] = {}
        self.flat_of: dict[str, tuple[int, int]] = {}  # flattened tensor → (space, H·W)

    def visit(self, node: Any) -> None:
        op, label = node.op_type, onnx_graph.node_label(node)
        spaced = [i for i in node.input if i in self.space_of]
        flat = [i for i in node.input if i in self.flat_of]
        if op in LINEAR and self._weight(node) is not None:
            self._linear(node, label)
        elif op in PASS_THROUGH and spaced:
            self.space_of[node.output[0]] = self.space_of[node.input[0]]
        elif op == "BatchNormalization" and spaced:
            space = self.space_of[node.input[0]]
            self.spaces.group(space).slices += [Slice(n, 0, role="adjust") for n in node.input[1:5]]
            self.space_of[node.output[0]] = space
        elif op in ELEMENTWISE and spaced:
            self._elementwise(node, label, spaced)
        elif op == "Flatten" and spaced:
            self._flatten(node, label)
        else:
            for name in spaced:
                self.spaces.block(self.space_of[name], f"it reaches node {label!r} ({op})")
            for name in flat:
                self.spaces.block(self.flat_of[name][0], f"it reaches node {label!r} ({op})")

    def _attention(self, node: Any, depth: int = 16) -> bool:
        """Whether ``node``'s output reaches a MatMul of two activations (queries × keys)
        before any weighted layer, within ``depth`` nodes: it projects attention heads."""
        frontier = [node]
        for _ in range(depth):
            frontier = [
                use
                for n in frontier
                for out in n.output
                for use in self.uses.get(out, [])
                if use.op_type != "Shape"  # shape arithmetic carries no channel
                and not (use.op_type in LINEAR and self._weight(use) is not None)
            ]
            if any(n.op_type == "MatMul" and not set(n.input) & set(self.values) for n in frontier):
                return True
        return False

    def _weight(self, node: Any) -> np.ndarray | None:
        w = self.values.get(node.input[1]) if len(node.input) > 1 else None
        return w if w is not None and w.ndim >= 2 else None

    def _linear(self, node: Any, label: str) -> None:
        w = self._weight(node)
        assert w is not None
        x, wname = node.input[0], node.input[1]
        op = node.op_type
        if op == "Conv" and _attr(node, "group", 1) != 1:
            self._grouped_conv(node, label, w)
            return
        if op == "Gemm" and _attr(node, "transA", 0):
            self._block_inputs(node, label, "Gemm with transA")
            return
        transb = bool(_attr(node, "transB", 0)) if op == "Gemm" else False
        in_axis = 1 if op == "Conv" or transb else 0
        out_axis = 0 if op == "Conv" or transb else 1
        if x in self.space_of:
            self._consume(self.space_of[x], Slice(wname, in_axis, role="consumer"), x, node)
        elif x in self.flat_of:
            space, hw = self.flat_of[x]
            self._consume(space, Slice(wname, in_axis, block=hw, role="consumer"), x, node)
        group = Group(
            layers=[label], channels=int(w.shape[out_axis]), axis=1 if op == "Conv" else -1
        )
        group.slices.append(Slice(wname, out_axis))
        space = self.spaces.new(group)
        if self._attention(node):
            why = "it projects attention heads (pruned only on the torch model: .pt with --arch)"
            self.spaces.block(space, why)
        if len(self.uses.get(wname, [])) > 1:
            self.spaces.block(space, f"its weight {wname!r} is shared by several nodes")
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None:
            b = self.values.get(bias)
            if b is None or b.ndim != 1 or b.shape[0] != group.channels:
                self.spaces.block(space, f"bias {bias!r} is not a per-channel initializer")
            else:
                group.slices.append(Slice(bias, 0))
        self.space_of[node.output[0]] = space

    def _consume(self, space: int, piece: Slice, tensor: str, node: Any) -> None:
        group = self.spaces.group(space)
        group.slices.append(piece)
        rank = len(self.shapes.get(tensor, [])) or 2
        group.feeds.append((tensor, 1 if rank == 4 and piece.block > 1 else group.axis))

    def _grouped_conv(self, node: Any, label: str, w: np.ndarray) -> None:
        x = node.input[0]
        groups = _attr(node, "group", 1)
        depthwise = w.shape[1] == 1 and groups == w.shape[0]
        if x not in self.space_of or not depthwise:
            self._block_inputs(node, label, "grouped Conv (only depthwise is adjusted)")
            return
        space = self.space_of[x]
        group = self.spaces.group(space)
        group.slices.append(Slice(node.input[1], 0, role="adjust"))
        if len(node.input) > 2 and node.input[2]:
            group.slices.append(Slice(node.input[2], 0, role="adjust"))
        group.regroup.append(label)
        self.space_of[node.output[0]] = space

    def _elementwise(self, node: Any, label: str, spaced: list[str]) -> None:
        space = self.space_of[spaced[0]]
        for name in spaced[1:]:
            space = self.spaces.union(space, self.space_of[name])
        group = self.spaces.group(space)
        for name in node.input:
            if name in self.space_of or not name:
                continue
            const = self.values.get(name)
            if const is None:
                self.spaces.block(space, f"node {label!r} ({node.op_type}) mixes in {name!r}")
            elif const.size > 1:
                axis = _channel_axis(const, group.channels, group.axis, node, self.shapes)
                if axis is None:
                    self.spaces.block(space, f"constant {name!r} of {label!r} is not per-channel")
                else:
                    group.slices.append(Slice(name, axis, role="adjust"))
        self.space_of[node.output[0]] = space

    def _flatten(self, node: Any, label: str) -> None:
        x = node.input[0]
        shape = self.shapes.get(x, [])
        space = self.space_of[x]
        if len(shape) == 2:
            self.space_of[node.output[0]] = space
        elif len(shape) == 4 and _attr(node, "axis", 1) == 1 and all(shape[2:]):
            self.flat_of[node.output[0]] = (space, int(shape[2] * shape[3]))
        else:
            self.spaces.block(space, f"Flatten {label!r} of an input of unknown shape")

    def _block_inputs(self, node: Any, label: str, why: str) -> None:
        for name in node.input:
            space = self.space_of.get(name, self.flat_of.get(name, (None, 0))[0])
            if space is not None:
                self.spaces.block(space, f"it reaches node {label!r}: {why}")


def _channel_axis(
    const: np.ndarray, channels: int, axis: int, node: Any, shapes: dict[str, list[Any]]
) -> int | None:
    """The axis of a broadcast constant that runs along the channels, if it is per-channel."""
    rank = max(len(shapes.get(node.output[0], [])), const.ndim)
    target = axis % rank if axis >= 0 else rank + axis
    pos = target - (rank - const.ndim)
    others = [d for i, d in enumerate(const.shape) if i != pos]
    if 0 <= pos < const.ndim and const.shape[pos] == channels and all(d == 1 for d in others):
        return pos
    return None
