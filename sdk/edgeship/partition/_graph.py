"""An ONNX graph seen as a sequence of cuttable nodes, and the sub-models between cuts.

Top-level nodes in topological order are the units a cut falls between. ``Constant``
nodes are not units: each stage that reads one gets its own copy, as it gets its own
copy of the initializers it reads. Control-flow nodes (``If``, ``Loop``, ``Scan``) are
units held whole — their subgraphs are never cut — and the outer-scope tensors their
subgraphs read count as their inputs.

Stage contract (what the pipeline runner relies on): stage 0 takes the model's inputs;
stage s > 0 takes exactly the outputs of stage s - 1; the last stage gives the model's
outputs in order. A tensor needed two or more stages after the one producing it is
passed through the stages between (listed as ``passthrough``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeship.core.errors import PartitionError

__all__ = [
    "CONTROL_FLOW",
    "GraphInfo",
    "StagePlan",
    "analyse",
    "check_stages",
    "max_stages",
    "outer_references",
    "plan_stages",
    "stage_model",
    "value_types",
]

CONTROL_FLOW = ("If", "Loop", "Scan", "SequenceMap")


@dataclass
class GraphInfo:
    model: Any
    units: list[int]
    needs: list[list[str]]
    constants: dict[str, int]
    initializers: set[str]
    inputs: list[str]
    outputs: list[str]
    control_flow: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> Any:
        return self.model.graph.node


@dataclass
class StagePlan:
    index: int
    nodes: list[int]
    inputs: list[str]
    outputs: list[str]

    @property
    def passthrough(self) -> list[str]:
        return [t for t in self.outputs if t in set(self.inputs)]


def analyse(model: Any) -> GraphInfo:
    """Name nodes uniquely, order them topologically, and find units and needs."""
    model = copy.deepcopy(model)
    graph = model.graph
    _name_nodes(graph.node)
    initializers = {t.name for t in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializers]
    needs = [_node_needs(n) for n in graph.node]
    _sort_topologically(graph, needs, set(inputs) | initializers)
    needs = [_node_needs(n) for n in graph.node]
    constants = {
        out: i for i, n in enumerate(graph.node) if n.op_type == "Constant" for out in n.output
    }
    units = [i for i, n in enumerate(graph.node) if n.op_type != "Constant"]
    control = [n.name for n in graph.node if _subgraphs(n)]
    return GraphInfo(
        model,
        units,
        needs,
        constants,
        initializers,
        inputs,
        [v.name for v in graph.output],
        control,
    )


def _name_nodes(nodes: Any) -> None:
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if not node.name or node.name in seen:
            base = f"{node.op_type}_{i}"
            name, k = base, 1
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            node.name = name
        seen.add(node.name)


def _subgraphs(node: Any) -> list[Any]:
    found = []
    for attr in node.attribute:
        if attr.HasField("g"):
            found.append(attr.g)
        found.extend(attr.graphs)
    return found


def _node_needs(node: Any) -> list[str]:
    """Inputs, then outer-scope names its subgraphs read (each once, in order)."""
    names = [n for n in node.input if n]
    for sub in _subgraphs(node):
        names.extend(sorted(outer_references(sub)))
    return list(dict.fromkeys(names))


def outer_references(graph: Any) -> set[str]:
    """Names a (sub)graph reads that it neither defines nor takes as input."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        for sub in _subgraphs(node):
            used |= outer_references(sub)
        defined.update(node.output)
    return used - defined


def _sort_topologically(graph: Any, needs: list[list[str]], available: set[str]) -> None:
    producer = {out: i for i, n in enumerate(graph.node) for out in n.output if out}
    order: list[int] = []
    done = set(available)
    placed = [False] * len(needs)
    progress = True
    while progress and len(order) < len(needs):
        progress = False
        for i in range(len(needs)):
            if not placed[i] and all(t in done or t not in producer for t in needs[i]):
                placed[i], progress = True, True
                order.append(i)
                done.update(graph.node[i].output)
    if len(order) != len(needs):
        stuck = [graph.node[i].name for i in range(len(needs)) if not placed[i]][:5]
        raise PartitionError(f"the graph has a cycle or dangling inputs near nodes {stuck}")
    if order != list(range(len(needs))):
        nodes = [copy.deepcopy(graph.node[i]) for i in order]
        del graph.node[:]
        graph.node.extend(nodes)


def max_stages(info: GraphInfo) -> int:
    return len(info.units)


def check_stages(info: GraphInfo, k: int) -> None:
    """``k`` stages need ``k`` units; say so plainly, naming nodes held whole."""
    if k < 1:
        raise PartitionError(f"--stages must be at least 1, got {k}", step="partition")
    if k <= len(info.units):
        return
    held = ""
    if info.control_flow:
        held = (
            f"; control-flow node(s) {info.control_flow[:5]} are held whole: edgeship "
            "does not cut inside If/Loop/Scan subgraphs"
        )
    raise PartitionError(
        f"--stages {k} is more than this graph allows: it has {len(info.units)} node(s) "
        f"that can start a stage{held}",
        step="partition",
    )


def plan_stages(info: GraphInfo, cuts: Sequence[int]) -> list[StagePlan]:
    """Stages for ``cuts`` (positions in ``info.units``), with their boundary tensors."""
    bounds = [0, *cuts, len(info.units)]
    groups = [info.units[a:b] for a, b in itertools.pairwise(bounds)]
    shared = info.initializers | set(info.constants)
    produced_in: dict[str, int] = {t: -1 for t in info.inputs}
    needed_by: dict[str, int] = {}
    order = list(info.inputs)
    for s, group in enumerate(groups):
        for i in group:
            for t in info.needs[i]:
                if t not in shared:
                    needed_by[t] = max(needed_by.get(t, -1), s)
            for t in info.nodes[i].output:
                if t and t not in produced_in:
                    produced_in[t] = s
                    order.append(t)
    last = len(groups) - 1
    for t in info.outputs:
        needed_by[t] = last + 1
    plans: list[StagePlan] = []
    previous = list(info.inputs)
    for s, group in enumerate(groups):
        if s == last:
            outputs = list(info.outputs)
        else:
            outputs = [t for t in order if produced_in[t] <= s < needed_by.get(t, -1)]
        nodes = sorted({*group, *_constants_for(info, group, outputs if s == last else [])})
        plans.append(StagePlan(s, nodes, previous, outputs))
        previous = outputs
    return plans


def _constants_for(info: GraphInfo, group: Iterable[int], extra: Iterable[str]) -> set[int]:
    names = {t for i in group for t in info.needs[i]} | set(extra)
    return {info.constants[t] for t in names if t in info.constants}


def stage_model(info: GraphInfo, plan: StagePlan, types: dict[str, Any]) -> Any:
    """The sub-model of one stage; ``types`` maps tensor names to ValueInfoProtos."""
    from onnx import helper

    nodes = [copy.deepcopy(info.nodes[i]) for i in plan.nodes]
    read = {t for i in plan.nodes for t in info.needs[i]} | set(plan.outputs)
    inits = [copy.deepcopy(t) for t in info.model.graph.initializer if t.name in read]
    graph = helper.make_graph(
        nodes,
        f"{info.model.graph.name or 'graph'}_stage{plan.index}",
        [_typed(types, t, plan.index, "input") for t in plan.inputs],
        [_typed(types, t, plan.index, "output") for t in plan.outputs],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=list(info.model.opset_import), producer_name="edgeship-partition"
    )
    model.ir_version = info.model.ir_version
    model.functions.extend(copy.deepcopy(f) for f in info.model.functions)
    return model


def _typed(types: dict[str, Any], name: str, stage: int, role: str) -> Any:
    if name not in types:
        raise PartitionError(
            f"tensor {name!r} ({role} of stage {stage}) has no known type: ONNX shape "
            "inference could not type it, so it cannot cross a stage boundary",
            step="partition",
        )
    value = copy.deepcopy(types[name])
    value.name = name
    return value


def value_types(model: Any) -> dict[str, Any]:
    """Name → ValueInfoProto for every typed tensor (after shape inference)."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    graph = inferred.graph
    values = [*graph.input, *graph.value_info, *graph.output]
    return {
        v.name: v for v in values if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type
    }
