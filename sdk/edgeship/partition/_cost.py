"""What each node costs: estimated FLOPs, or time measured with ONNX Runtime's profiler.

FLOPs come from shapes that ONNX shape inference gives once every dynamic input dim is
bound (to ``shapes``, else 1). Convolutions and matrix products count 2·MACs; pooling
counts window reads; anything else counts one operation per output element. A node
whose shapes stay unknown costs 1, so it still weighs something. A control-flow node
costs the sum of its subgraph's nodes (estimated without shapes).

Measured costs are per-node kernel times (µs, median over runs) from ONNX Runtime's
profiler with graph optimizations off, so nodes map one-to-one to the graph's.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.partition._graph import GraphInfo

__all__ = [
    "Shapes",
    "bind_inputs",
    "crossing_bytes",
    "flop_costs",
    "known_shapes",
    "node_flops",
    "profile_costs",
]

Shapes = dict[str, tuple[int, ...]]


def bind_inputs(model: Any, shapes: Mapping[str, Sequence[int]]) -> Any:
    """A copy whose graph inputs have every dim fixed: ``shapes`` or 1 for dynamic ones."""
    bound = copy.deepcopy(model)
    for value in bound.graph.input:
        dims = value.type.tensor_type.shape.dim
        given = shapes.get(value.name)
        for i, dim in enumerate(dims):
            size = given[i] if given is not None and i < len(given) else None
            if size is None:
                size = dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else 1
            dim.Clear()
            dim.dim_value = int(size)
    return bound


def known_shapes(model: Any) -> tuple[Shapes, dict[str, int]]:
    """(name → concrete shape, name → bytes per element) after shape inference."""
    from onnx import helper, shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        inferred = model
    graph = inferred.graph
    shapes: Shapes = {}
    itemsize: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tt = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if tt.HasField("shape") and all(d >= 0 for d in dims):
            shapes[value.name] = tuple(dims)
        if tt.elem_type:
            with contextlib.suppress(Exception):  # an elem type numpy cannot hold
                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
                itemsize[value.name] = dtype.itemsize
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes, itemsize


def flop_costs(info: GraphInfo, shapes: Shapes) -> list[float]:
    """Estimated FLOPs of each unit of ``info`` (in ``info.units`` order)."""
    return [float(node_flops(info.nodes[i], shapes)) for i in info.units]


def node_flops(node: Any, shapes: Shapes) -> int:
    outs = [shapes.get(o) for o in node.output if o]
    ins = [shapes.get(i) if i else None for i in node.input]
    subgraph = _subgraph_nodes(node)
    if subgraph:
        return max(1, subgraph)
    if not outs or outs[0] is None:
        return 1
    out = outs[0]
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv") and len(ins) > 1:
        weight = ins[3] if op == "QLinearConv" and len(ins) > 3 else ins[1]
        return 2 * _numel(out) * _numel(weight[1:]) if weight else _numel(out)
    if op == "ConvTranspose" and len(ins) > 1 and ins[0] and ins[1]:
        return 2 * _numel(ins[0]) * _numel(ins[1][1:])
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul") and ins and ins[0]:
        return 2 * _numel(out) * (ins[0][-1] if ins[0] else 1)
    if op == "Gemm" and ins and ins[0] and len(ins[0]) == 2:
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        return 2 * _numel(out) * ins[0][0 if trans_a else 1]
    if op in ("MaxPool", "AveragePool", "LpPool"):
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [1])
        return _numel(out) * _numel(kernel)
    if op.startswith("Reduce") or op.startswith("Global"):
        return _numel(ins[0]) if ins and ins[0] else _numel(out)
    return sum(_numel(o) for o in outs if o is not None)


def _subgraph_nodes(node: Any) -> int:
    total = 0
    for attr in node.attribute:
        graphs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
        for g in graphs:
            total += sum(1 + _subgraph_nodes(n) for n in g.node)
    return total


def _numel(shape: Sequence[int] | None) -> int:
    return int(math.prod(shape)) if shape else 1


def crossing_bytes(info: GraphInfo, shapes: Shapes, itemsize: Mapping[str, int]) -> list[float]:
    """``cross[p]``: bytes of the tensors live across a cut before unit ``p``."""
    n = len(info.units)
    position = {i: p for p, i in enumerate(info.units)}
    shared = info.initializers | set(info.constants)
    born: dict[str, int] = {t: 0 for t in info.inputs}
    last: dict[str, int] = {}
    for p, i in enumerate(info.units):
        for t in info.needs[i]:
            if t not in shared:
                last[t] = max(last.get(t, 0), p)
        for t in info.nodes[i].output:
            if t:
                born.setdefault(t, position[i] + 1)
    for t in info.outputs:
        last[t] = n
    delta = np.zeros(n + 2)
    for t, b in born.items():
        end = last.get(t, -1)
        if end >= b:
            size = _numel(shapes.get(t)) * itemsize.get(t, 4)
            delta[b] += size
            delta[end + 1] -= size
    return list(np.cumsum(delta)[: n + 1])


def profile_costs(
    model: Any, info: GraphInfo, feeds: Mapping[str, np.ndarray], runs: int = 20
) -> list[float]:
    """Median kernel µs over ``runs`` runs of each unit (so the cold first run does not
    count), from ONNX Runtime's profiler with graph optimizations off."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeship-prof-") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for _ in range(runs):
            session.run(None, dict(feeds))
        events = json.loads(Path(session.end_profiling()).read_text())
    times: dict[str, list[float]] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            times.setdefault(name[: -len("_kernel_time")], []).append(float(event.get("dur", 0)))
    return [float(np.median(times.get(info.nodes[i].name, [0.0]))) for i in info.units]
