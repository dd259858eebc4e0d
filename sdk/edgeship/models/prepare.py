"""Graphs as they come from the field, made ready for quantization, pruning and onnx2torch.

Exporters other than torch's (Paddle2ONNX, tf2onnx, hand-built graphs) often keep weights
in ``Constant`` nodes instead of initializers: quantizers and pruners look for weights
among initializers only, so they skip them (a "compressed" model as large as its base,
or larger when tied weights are copied). Here, before any method runs:

1. ``Constant`` nodes with a tensor value become initializers of their graph, the main
   one and those nested in ``If``/``Loop`` nodes (Silero keeps its weights in ``If``
   branches, where only a subgraph initializer is a weight to ONNX Runtime's quantizer);
2. for the same reason, initializers that ``If``/``Loop`` subgraphs read move into those
   subgraphs (copied into each that reads them; kept where their own graph reads them
   too): Silero's opset-18 export keeps its branches' weights in the main graph;
3. a graph that had such weights or computes shapes (``Shape`` nodes) is simplified with
   onnxslim where installed (constant folding, ``Shape``/``Gather`` arithmetic, dead
   nodes, standard fusions), without the shape annotations it adds (a result no larger for
   them); a simplifier failure keeps the prepared graph. A graph exported the usual way is
   left as it is, so node names (``--exclude-node``) stay valid;
4. the result is checked by ONNX Runtime (it must load), else the unsimplified one is used.

What was done is one line for the report's notes.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.core.quiet import quiet
from edgeship.models import onnx_graph
from edgeship.models.onnx_graph import graphs, subgraphs

__all__ = ["Prepared", "fold_constants", "node_count", "prepared", "sink_initializers"]


@dataclass
class Prepared:
    """The graph a method works on and what was done to get it (``note``: "" if nothing)."""

    path: Path
    note: str = ""


@contextlib.contextmanager
def prepared(base: Path, simplify: bool = True) -> Iterator[Prepared]:
    """``base`` itself when it needs nothing, else a prepared copy in a temporary folder
    (removed when the ``with`` block ends). ``simplify``: allow step 3."""
    model = onnx_graph.load(base)
    folded = fold_constants(model)
    moved = sink_initializers(model)
    field = folded + moved > 0 or any(n.op_type == "Shape" for n in model.graph.node)
    with tempfile.TemporaryDirectory(prefix="edgeship-prep-") as tmp:
        path = Path(tmp) / base.name
        nodes = node_count(model) + folded
        slim, how = _simplify(model) if simplify and field else (None, "")
        if slim is not None and _loads(slim, path):
            done = [f"simplified with {how} ({nodes} → {node_count(slim)} nodes)"]
        elif folded or moved:
            onnx_graph.save(model, path)
            done = []
        else:
            yield Prepared(base)
            return
        if moved:
            done.insert(0, f"{moved} initializer(s) moved into the subgraphs that read them")
        if folded:
            done.insert(0, f"{folded} Constant weight(s) folded into initializers")
        yield Prepared(path, "graph prepared: " + ", ".join(done))


def fold_constants(model: Any) -> int:
    """Turn the tensor-valued ``Constant`` nodes of every graph into initializers of that
    graph, in place; how many."""
    return _fold(model.graph)


def _fold(graph: Any) -> int:
    """Fold ``graph``'s own Constants, then those of the subgraphs of its (new) nodes:
    rebuilding ``graph.node`` copies the nodes, so nested graphs are reached only after."""
    from onnx import helper

    outputs = {o.name for o in graph.output}
    keep, folded = [], 0
    for node in graph.node:
        attr = node.attribute[0] if len(node.attribute) == 1 else None
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and attr is not None
            and attr.name == "value"
            and node.output[0] not in outputs
        ):
            tensor = helper.get_attribute_value(attr)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            folded += 1
        else:
            keep.append(node)
    if folded:
        del graph.node[:]
        graph.node.extend(keep)
    return folded + sum(_fold(sub) for node in graph.node for sub in subgraphs(node))


def sink_initializers(model: Any) -> int:
    """Move the initializers of every graph that its subgraphs read into those subgraphs,
    in place (a copy into each; the original stays where its own graph's nodes or outputs
    read it); how many initializers were moved or copied."""
    return _sink(model.graph)


def _sink(graph: Any) -> int:
    """Sink ``graph``'s initializers one level, then those of its subgraphs (so a weight
    that a ``Loop`` inside an ``If`` branch reads ends in the ``Loop`` body). An
    initializer listed among the graph's inputs is an overridable default: it stays."""
    children = [sub for node in graph.node for sub in subgraphs(node)]
    reads = [_outer_reads(sub) for sub in children]
    overridable = {i.name for i in graph.input}
    used_here = {name for node in graph.node for name in node.input}
    used_here |= {o.name for o in graph.output} | overridable
    keep, moved = [], 0
    for tensor in graph.initializer:
        users = [sub for sub, names in zip(children, reads, strict=True) if tensor.name in names]
        if users and tensor.name not in overridable:
            for sub in users:
                sub.initializer.add().CopyFrom(tensor)
            moved += 1
        if not users or tensor.name in used_here:
            keep.append(tensor)
    if moved:
        del graph.initializer[:]
        graph.initializer.extend(keep)
    return moved + sum(_sink(sub) for sub in children)


def _outer_reads(graph: Any) -> set[str]:
    """Names that ``graph`` or a graph nested in it reads from an enclosing scope."""
    read: set[str] = set()
    own: set[str] = set()
    for g in graphs(graph):
        read.update(name for node in g.node for name in node.input if name)
        read.update(o.name for o in g.output)
        own.update(t.name for t in g.initializer)
        own.update(i.name for i in g.input)
        own.update(name for node in g.node for name in node.output)
    return read - own


def node_count(model: Any) -> int:
    """Nodes in all graphs of ``model``, nested ones included."""
    return sum(len(g.node) for g in graphs(model.graph))


def _simplify(model: Any) -> tuple[Any | None, str]:
    try:
        import onnxslim
    except ImportError:
        return None, ""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    try:
        with quiet():
            slim = onnxslim.slim(copy)
    except Exception:  # the simplifier fails on graphs it does not understand: keep going
        return None, ""
    sink_initializers(slim)  # onnxslim lifts what several branches read to the main graph
    _keep_annotations(model, slim)
    return slim, f"onnxslim {importlib.metadata.version('onnxslim')}"


def _keep_annotations(base: Any, slim: Any) -> None:
    """Drop the shape annotations (``value_info``) onnxslim adds for tensors the base did
    not annotate, and its repeats of those it did (one a name): on PaddleOCR's detector 605
    new ones, 123 KB, which made a pruned copy 1.02× its base's size; on YOLOv8n each of
    its 332 annotations up to 9 times, 1.02× again. ONNX Runtime and the quantizers infer
    shapes themselves."""
    had = {v.name for g in graphs(base.graph) for v in g.value_info}
    for graph in graphs(slim.graph):
        kept: dict[str, Any] = {}
        for v in graph.value_info:
            if v.name in had:
                kept.setdefault(v.name, v)
        del graph.value_info[:]
        graph.value_info.extend(kept.values())


def _loads(model: Any, path: Path) -> bool:
    """Save ``model`` to ``path`` if it is valid ONNX that ONNX Runtime loads."""
    import onnxruntime as ort

    try:
        onnx_graph.save(model, path)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # not valid ONNX, or a graph ONNX Runtime refuses
        path.unlink(missing_ok=True)
        return False
    return True
