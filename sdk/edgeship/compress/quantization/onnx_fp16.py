"""FP16 conversion of ONNX models (onnxconverter-common), with what it must keep float32.

Weights and compute in float16, inputs and outputs kept float32. Nodes with a float
constant outside float16's range (a BatchNorm variance of 1e8, as Paddle exports have)
stay float32, instead of having it clamped. Float32 inputs that subgraphs read from the
outer scope are cast for them (the converter casts them for top-level nodes only, which
leaves an ``If`` branch mixing float32 and float16). A ``Transpose`` that moves the
leading axis behind the other batch axes and feeds a ``MatMul`` (the ``[1, 0, 2]`` that a
batch-first ``nn.MultiheadAttention`` export starts with) stays float32 too, else ONNX
Runtime crashes loading the model: see :func:`batch_transposes`. A node that the
converter fails on, or that ONNX's type check rejects after conversion, is kept float32,
one at a time; an output computed by a node kept float32 reaches the graph through an
``Identity`` (the converter fails on it otherwise). A model whose float weights are all
float16 already has nothing to convert (:class:`~edgeship.compress.guard.NothingToConvert`).

With the fallback on (the default), nodes whose activations leave float16's range on the
search inputs (an STFT of 16-bit-scale audio: 1e6, its power 1e12) compute in float32 too,
with no float16 round trip between two such nodes. Every node kept in float32 beyond the
user's exclusions stores its weights float16, cast to float32 in the graph
(:func:`~._weights.float16_weights`), so the file stays about half the size.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress._search import Search
from edgeship.compress.config import QuantizeConfig
from edgeship.compress.guard import NothingToConvert
from edgeship.compress.quantization._weights import float16_weights
from edgeship.core.errors import cause_of
from edgeship.core.extras import import_optional
from edgeship.models import onnx_graph
from edgeship.models.onnx_graph import graphs, subgraphs

__all__ = [
    "FP16_MAX",
    "FP16_RETRIES",
    "MATMULS",
    "OVERFLOW_MARGIN",
    "Converted",
    "batch_transposes",
    "convert_fp16",
    "out_of_range_nodes",
    "overflowing_nodes",
]


def convert_fp16(
    model: Any, config: QuantizeConfig, out: Path, search: Search | None = None
) -> Converted:
    """``model`` in float16 with float32 inputs and outputs, written to ``out``: the nodes
    kept in float32 beyond ``config``'s exclusions, and those of them whose weights are
    stored float16 (:func:`~._weights.float16_weights`). With ``search`` (and
    ``config.fallback``), nodes whose activations leave float16's range on its inputs are
    kept in float32 too (:func:`overflowing_nodes`)."""
    float16 = import_optional("onnxconverter_common.float16", "fp16")
    _check_float32_weights(model)
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(config.exclude_op_types)
    nodes = list(config.exclude_nodes) + out_of_range_nodes(model)
    nodes += [n for n in batch_transposes(model) if n not in nodes]
    if search is not None and config.fallback:
        nodes += [n for n in overflowing_nodes(model, search.calls) if n not in nodes]
    for _ in range(FP16_RETRIES):
        try:
            converted = _convert_fp16(float16, model, block, nodes)
        except Exception as exc:  # the converter failing on a node: keep that one float32
            failed = onnx_graph.owner_node(model, cause_of(exc).node)
            if failed is None or failed in nodes:
                raise
            nodes.append(failed)
            continue
        rejected = _rejected_node(converted)
        if rejected is None or rejected in nodes:
            break
        nodes.append(rejected)  # a type the converter could not reconcile: keep it float32
    kept = [n for n in nodes if n not in config.exclude_nodes]
    stored = float16_weights(converted, kept, FP16_MAX)
    onnx_graph.save(converted, out)
    return Converted(kept, stored)


@dataclass(frozen=True)
class Converted:
    """What fp16 kept in float32 beyond the user's exclusions (``kept``), and which of
    those nodes store their weights in float16 (cast to float32 in the graph)."""

    kept: list[str]
    half_stored: list[str]


OVERFLOW_MARGIN = 0.5
"""A tensor whose values reach this share of float16's largest on the search inputs is
taken to leave its range on others."""


def overflowing_nodes(model: Any, calls: list[dict[str, np.ndarray]]) -> list[str]:
    """Names of the main graph's nodes that write or read a float tensor whose values
    reach :data:`OVERFLOW_MARGIN` of float16's range on ``calls`` (an STFT's power
    spectrum of 16-bit-scale audio, 1e12), run in float32: in float16 they would give
    inf, and a node reading one (a ``Log``) would too; unnamed such nodes are given a
    name."""
    import tempfile

    from edgeship.compress import _evaluate as evaluate
    from edgeship.compress.quantization.fallback import read_out

    with tempfile.TemporaryDirectory(prefix="edgeship-fp16-") as tmp:
        sig = evaluate.signature(onnx_graph.save(model, Path(tmp) / "base.onnx"))
    tensors = [t for n in model.graph.node for t in n.output if t]
    peaks = dict.fromkeys(tensors, 0.0)
    for values in read_out(model, sig, tensors, calls):
        for name in tensors:
            value = np.asarray(values[name])
            if value.dtype.kind == "f" and value.size:
                peaks[name] = max(peaks[name], float(np.max(np.abs(value))))
    wide = {t for t, peak in peaks.items() if not peak < OVERFLOW_MARGIN * FP16_MAX}
    return [
        _kept_name(node, i)
        for i, node in enumerate(model.graph.node)
        if wide.intersection(node.output) or wide.intersection(node.input)
    ]


def _check_float32_weights(model: Any) -> None:
    """Refuse a model whose float weights are all float16 already: fp16 has nothing to
    convert (onnxconverter-common's own refusal was a traceback)."""
    from onnx import TensorProto

    kinds = [t.data_type for g in graphs(model.graph) for t in g.initializer]
    half = kinds.count(TensorProto.FLOAT16)
    if half and TensorProto.FLOAT not in kinds:
        raise NothingToConvert(
            f"fp16: nothing to convert, the model's float weights are float16 already "
            f"({half} of {half}); int8-dynamic or int8-static quantizes them"
        )


FP16_RETRIES = 16
"""Nodes that the converter fails on, or that ONNX's type check rejects after conversion,
kept float32 one by one."""


def _float_outputs_apart(graph: Any, block: list[str], nodes: list[str]) -> None:
    """Put an ``Identity`` between each graph output and its producer when the producer
    stays float32: the converter casts such an output to float16 after the node and back
    to float32 for the graph, then fails removing that pair of casts ("The downstream
    node of the second cast node should be graph output": onnxconverter-common 1.16, a
    log-mel front-end ending in ``Max``). The ``Identity`` runs in float16 between them."""
    from onnx import helper

    outputs = {o.name for o in graph.output}
    for node in list(graph.node):
        if node.op_type not in block and node.name not in nodes:
            continue
        for k, name in enumerate(node.output):
            if name in outputs:
                node.output[k] = f"{name}_fp32"
                graph.node.append(
                    helper.make_node("Identity", [node.output[k]], [name], name=f"{name}_fp16")
                )


def _convert_fp16(float16: Any, model: Any, block: list[str], nodes: list[str]) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    _float_outputs_apart(copy.graph, block, nodes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="onnxconverter_common")
        converted = float16.convert_float_to_float16(
            copy,
            max_finite_val=FP16_MAX,
            keep_io_types=True,
            op_block_list=block,
            node_block_list=nodes,
        )
    for graph in graphs(converted.graph):  # stale float32 entries beside inserted Casts
        del graph.value_info[:]
    _cast_outer_inputs(converted)
    _input_casts_first(converted.graph)
    for graph in graphs(converted.graph):
        _no_float16_round_trips(graph)
    return converted


def _no_float16_round_trips(graph: Any) -> None:
    """Let float32 nodes read a float32 tensor directly where the converter sends it
    through float16 and back (``Cast`` to float16, then ``Cast`` to float32 for each
    float32 reader: a tensor that two nodes kept in float32 read): the round trip turns
    values beyond float16's range, which is why those nodes are kept, into inf."""
    from onnx import TensorProto

    def cast_to(node: Any) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    made = {out: n for n in graph.node for out in n.output}
    outputs = {o.name for o in graph.output}
    gone: set[int] = set()
    for node in graph.node:
        first = made.get(node.input[0]) if cast_to(node) == TensorProto.FLOAT else None
        if first is None or cast_to(first) != TensorProto.FLOAT16 or node.output[0] in outputs:
            continue
        wide = made.get(first.input[0])
        if wide is None or not first.name.startswith(f"{wide.name}_output_cast"):
            continue  # not the converter's cast of a float32 node's output
        for reader in graph.node:
            for k, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[k] = first.input[0]
        gone.add(id(node))
        if not any(first.output[0] in n.input for n in graph.node if id(n) not in gone):
            gone.add(id(first))
    kept = [n for n in graph.node if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(kept)


def _input_casts_first(graph: Any) -> None:
    """Move the Casts of graph inputs to the top: the converter leaves the one it inserts
    for a top-level consumer at that consumer, which may come after an ``If`` whose
    branches it pointed to the cast too (ONNX's type inference then rejects the ``If``)."""
    inputs = {i.name for i in graph.input}
    first = [n for n in graph.node if n.op_type == "Cast" and n.input[0] in inputs]
    if not first:
        return
    rest = [n for n in graph.node if not (n.op_type == "Cast" and n.input[0] in inputs)]
    del graph.node[:]
    graph.node.extend(first + rest)


def _cast_outer_inputs(model: Any) -> None:
    """Give subgraph nodes that read a float32 graph input from the outer scope a float16
    copy, cast at the top of the main graph: the converter converts subgraphs whole but
    casts kept-float32 inputs for top-level consumers only."""
    from onnx import TensorProto, helper

    kept = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    renamed: dict[str, str] = {}
    for node in model.graph.node:
        for sub in subgraphs(node):
            _rename_reads(sub, kept, renamed)
    for name, half in reversed(renamed.items()):
        cast = helper.make_node("Cast", [name], [half], name=half, to=TensorProto.FLOAT16)
        model.graph.node.insert(0, cast)


def _rename_reads(graph: Any, names: set[str], renamed: dict[str, str]) -> None:
    """Point reads of ``names`` in ``graph`` and below to their float16 copies (recorded
    in ``renamed``); a name the graph declares itself shadows the outer one."""
    own = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    own |= {o for n in graph.node for o in n.output}
    visible = names - own
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in visible:
                node.input[k] = renamed.setdefault(name, f"{name}_fp16_outer")
        for sub in subgraphs(node):
            _rename_reads(sub, visible, renamed)


_NODE_IN_ERROR = re.compile(r"node name: ([^)]+)\)")


def _rejected_node(model: Any) -> str | None:
    """The node ONNX's strict type inference names when it finds a type mismatch in
    ``model``, else None (ONNX Runtime itself is not asked: a malformed graph can crash
    it)."""
    from onnx import shape_inference

    try:
        shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # InferenceError, ValidationError
        found = _NODE_IN_ERROR.search(str(exc))
        return found.group(1).strip() if found else None
    return None


FP16_MAX = 65504.0
"""The largest finite float16."""


def out_of_range_nodes(model: Any) -> list[str]:
    """Names of nodes reading a float initializer with a finite value beyond float16's
    range (kept float32 by the conversion); unnamed such nodes are given a name."""
    from onnx import numpy_helper

    names = []
    for graph in graphs(model.graph):
        values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        wide = {
            name
            for name, v in values.items()
            if v.dtype.kind == "f" and v.size and float(np.max(np.abs(v))) > FP16_MAX
        }
        for i, node in enumerate(graph.node):
            if wide.intersection(node.input):
                names.append(_kept_name(node, i))
    return names


def _kept_name(node: Any, index: int) -> str:
    """``node``'s name, given one (``OP_<index>_fp32``) when it has none: the converter
    keeps nodes float32 by name."""
    if not node.name:
        node.name = f"{node.op_type}_{index}_fp32"
    return str(node.name)


MATMULS = frozenset({"MatMul", "FusedMatMul"})


def batch_transposes(model: Any) -> list[str]:
    """Names of ``Transpose`` nodes to keep float32: those whose ``perm`` moves the leading
    axis behind the other batch axes (``[1, …, r-2, 0, r-1]`` or ``[1, …, r-1, 0]``, rank 3
    or more) and whose output reaches a ``MatMul`` directly or through ``Cast`` nodes;
    unnamed such nodes are given a name.

    Why: ONNX Runtime's CPU provider (x86) has no float16 ``MatMul`` kernel, so at session
    creation it casts the float16 ``Transpose`` output to float32 for the ``MatMul``; its
    ``MatmulTransposeFusion`` then swaps that ``Cast`` with a ``Transpose`` of this form
    (FusedMatMul's ``transBatch`` layout), does not fuse, and leaves a graph on which the
    next transformer (``NchwcTransformer``, level ``ORT_ENABLE_ALL``) segfaults:
    onnxruntime 1.32, and a float32 ``Transpose → Cast → MatMul`` crashes it too. Kept
    float32, the ``Transpose`` is cast before it, and no single ``Cast`` separates it from
    the ``MatMul``.
    """
    names = []
    for graph in graphs(model.graph):
        reads = onnx_graph.readers(graph)
        for i, node in enumerate(graph.node):
            if node.op_type == "Transpose" and _moves_batch(node) and _reaches_matmul(node, reads):
                names.append(_kept_name(node, i))
    return names


def _moves_batch(transpose: Any) -> bool:
    """Whether ``transpose``'s ``perm`` is one of FusedMatMul's ``transBatch`` layouts."""
    perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), [])
    rank = len(perm)
    lead = list(range(1, rank - 1))
    return rank >= 3 and perm in ([*lead, 0, rank - 1], [*lead, rank - 1, 0])


def _reaches_matmul(node: Any, readers: dict[str, list[Any]]) -> bool:
    """Whether a ``MatMul`` reads ``node``'s output directly or through ``Cast`` nodes."""
    nexts = [r for out in node.output for r in readers.get(out, [])]
    return any(
        r.op_type in MATMULS or (r.op_type == "Cast" and _reaches_matmul(r, readers)) for r in nexts
    )
