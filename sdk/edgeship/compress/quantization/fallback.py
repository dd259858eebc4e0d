"""Accuracy-aware fallback for INT8: when quantizing every node collapses the model, keep
the nodes that add the most error in float, as few as hold its outputs.

What Intel Neural Compressor and Olive call accuracy-aware tuning, in four steps:

1. the fully quantized model is judged against its base on the *search* inputs (rows of
   ``--data`` that the final judgement never sees, or inputs generated with other seeds),
   every output by its kind, with the guard's thresholds at half the loss they allow
   (:func:`.._search.with_margin`); when every output holds, nothing more happens: the search is
   driven by the worst output, not the first;
2. the quantized nodes of the main graph are ranked by the error each adds on its own:
   the node alone, quantized the same way, fed the base's float activations (a tensor's
   error in the quantized model also carries what its inputs brought: ranked by that,
   PaddleOCR's detector needed 32 of 64 convolutions in float, ranked by its own error
   12). Nodes inside ``If``/``Loop`` branches, whose activations cannot be read out, are
   ranked by op type: how well the model holds with that type alone kept in float; a
   TFLite model's layers, each by how well the model holds with it alone quantized
   (:func:`rank_alone`);
3. the first 1, 2, 4, ... of that ranking are kept in float until the model holds, then
   the count is bisected between the last two tries. Where the format can (ONNX: a
   ``lighten`` step), a node kept out of quantization keeps float activations but INT8
   weights first ("weight-only INT8", per channel, decoded in the graph), so the
   result stays compressed; only when even every ranked unit kept that way does not hold
   is the search run again keeping them wholly in float (weights too);
4. what it kept is in the result, unless the result is hardly smaller than its base
   (:data:`MAX_SIZE`); when nothing holds, the fully quantized model stays, for the guard
   to refuse.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress import _evaluate as evaluate
from edgeship.compress import _search
from edgeship.compress._search import Calls, Search, judged, with_margin, worst_figure
from edgeship.models import onnx_graph
from edgeship.models.kinds import OutputVerdict
from edgeship_runtime.signature import Signature

__all__ = [
    "MAX_BISECTIONS",
    "MAX_SIZE",
    "NAMED",
    "RANKING_CALLS",
    "UNRANKED",
    "Fallback",
    "Lighten",
    "Quantize",
    "Ranker",
    "activations",
    "hold",
    "local_errors",
    "rank",
    "rank_alone",
    "read_out",
]

Quantize = Callable[[Path, Sequence[str], Path, "Calls | None"], None]
"""``(model, nodes kept in float, out, calibration calls)``: quantize as the job says;
calibration calls are given for a single-node model (None: the job's own data)."""

Lighten = Callable[[Path, Sequence[str]], list[str]]
"""``(a quantized model, the nodes it keeps in float)``: rewrite the model in place so those
nodes keep float activations with INT8 weights; the nodes that got INT8 weights."""

MAX_BISECTIONS = 3
MAX_SIZE = 0.9
"""A result this share of its base's size or more is not kept: it is hardly compressed
(PaddleOCR's detector, static INT8: 128 of 290 nodes in float, 0.96× the size), and
fp16 halves it."""
NAMED = 8
"""Nodes a note names (the details list them all)."""
RANKING_CALLS = 8
UNRANKED = -1.0
"""The error of a node whose single-node model could not be quantized or run."""


@dataclass(frozen=True)
class Fallback:
    """What the fallback did: the nodes it kept out of quantization (float activations),
    of how many quantized, how many quantizations it tried, what had collapsed and what
    holds now (``held``: "" when nothing it tried held); ``int8_weights``: those of the
    kept nodes whose weights stayed INT8 (weight-only), ``weight_only``: whether that tier
    was tried on nodes with weights (reports written before it read as neither)."""

    kept: tuple[str, ...]
    of: int
    tries: int
    collapsed: str
    held: str
    searched_on: str
    int8_weights: tuple[str, ...] = ()
    weight_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept_float": list(self.kept),
            "quantized_before": self.of,
            "tries": self.tries,
            "collapsed": self.collapsed,
            "held": self.held,
            "searched_on": self.searched_on,
            "kept_int8_weights": list(self.int8_weights),
            "weight_only_tried": self.weight_only,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fallback:
        return cls(
            tuple(data["kept_float"]),
            data["quantized_before"],
            data["tries"],
            data["collapsed"],
            data["held"],
            data["searched_on"],
            tuple(data.get("kept_int8_weights", ())),
            data.get("weight_only_tried", False),
        )

    @property
    def _how(self) -> str:
        """How the kept nodes were kept, when the weight-only tier was tried."""
        if not self.weight_only:
            return ""
        if self.int8_weights:
            return f", {len(self.int8_weights)} of them with INT8 weights (weight-only)"
        if self.held:
            return " (weights too: with INT8 weights they did not hold)"
        return " (with INT8 weights, then with float ones)"

    @property
    def tried(self) -> str:
        """What was tried, for a refusal's line."""
        return (
            f"the INT8 fallback kept up to {len(self.kept)} of {self.of} quantized nodes in "
            f"float{self._how} ({_tries(self.tries)} on {self.searched_on}) without holding "
            f"it ({self.collapsed})"
        )

    @property
    def refusal(self) -> str:
        """What the fallback did, for the line of a refusal that follows it."""
        if not self.held:
            return self.tried
        return (
            f"the INT8 fallback's {len(self.kept)} of {self.of} nodes in float{self._how} "
            f"held on {self.searched_on} ({self.held}), not on these"
        )

    @property
    def note(self) -> str:
        if not self.held:
            return f"fallback: {self.tried}"
        shown = ", ".join(self.kept[:NAMED]) + (", ..." if len(self.kept) > NAMED else "")
        kept = (
            f"{len(self.kept)} of its {self.of} quantized nodes keep float activations, "
            f"{len(self.int8_weights)} of them with INT8 weights (weight-only, per channel),"
            if self.int8_weights
            else f"{len(self.kept)} of its {self.of} quantized nodes kept in float{self._how}"
        )
        return (
            f"fallback: the fully quantized model collapsed on {self.searched_on} "
            f"({self.collapsed}); {kept} hold it ({self.held}; {_tries(self.tries)}): "
            f"{shown} (all in details)"
        )


def _tries(n: int) -> str:
    return f"{n} try" if n == 1 else f"{n} tries"


def hold(
    base: Path,
    out: Path,
    quantized: Sequence[str],
    quantize: Quantize,
    search: Search,
    ranker: Ranker | None = None,
    lighten: Lighten | None = None,
) -> Fallback | None:
    """None when ``out`` (``base`` with ``quantized`` nodes quantized) holds on the search
    inputs; else ``out`` is rewritten with the fewest ranked nodes kept out of quantization
    that hold it (left as it was when none does), and what was done is returned.
    ``ranker``: how the nodes are ranked (:func:`rank`, an ONNX graph's, by default);
    ``lighten``: how kept nodes get INT8 weights, tried before keeping them wholly float."""
    search = replace(search, policy=with_margin(search.policy))
    expected = evaluate.predict_feeds(base, search.calls)
    reasons, _ = judged(expected, out, search)
    if not reasons:
        return None
    units = (ranker or rank)(base, quantized, quantize, search, expected)
    tries, lightened = 0, False
    with tempfile.TemporaryDirectory(prefix="edgeship-fallback-") as tmp:
        for tier in [lighten, None] if lighten else [None]:
            trial = _Trials(base, Path(tmp), quantize, search, expected, units, tier)
            count, figure = trial.fewest()
            tries += trial.tries
            lightened = lightened or any(trial.lightened.values())
            if count or (tier is not None and not lightened):
                break  # held, or no kept node had weights: wholly float is what was tried
        kept = tuple(n for unit in units[: count or len(units)] for n in unit)
        int8 = tuple(trial.lightened.get(count, ()))  # of what held, or of the last try
        if count and _size(trial.path(count)) >= MAX_SIZE * _size(base):
            ratio = _size(trial.path(count)) / _size(base)
            count, figure = 0, ""
            reasons.append(f"what held was {ratio:.2f}× the base's size")
        if count:
            shutil.copyfile(trial.path(count), out)
    described = search.described
    return Fallback(
        kept, len(quantized), tries, "; ".join(reasons), figure, described, int8, lightened
    )


def _size(path: Path) -> int:
    return path.stat().st_size


Ranker = Callable[[Path, Sequence[str], Quantize, Search, evaluate.Outputs], list[list[str]]]
"""``(base, quantized nodes, quantize, search, the base's outputs on it)``: the units to
keep in float, most harmful first."""


def rank_alone(
    base: Path,
    quantized: Sequence[str],
    quantize: Quantize,
    search: Search,
    expected: evaluate.Outputs,
) -> list[list[str]]:
    """Each node quantized alone, every other kept in float, judged on the search inputs:
    the nodes by the health of the worst output each leaves, the most harmful first. For
    a format whose activations cannot be read out to rank nodes by their own error
    (TFLite): one quantization and one judgement per node."""
    health: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgeship-rank-") as tmp:
        path = Path(tmp) / f"alone{base.suffix}"
        for name in quantized:
            quantize(base, [n for n in quantized if n != name], path, None)
            health[name] = _search.health(judged(expected, path, search)[1])
    return [[n] for n in sorted(health, key=lambda n: health[n])]


class _Trials:
    """Quantizations keeping the first ``count`` ranked units out of quantization (with
    INT8 weights where ``lighten`` is given, else wholly float), each judged once."""

    def __init__(
        self,
        base: Path,
        tmp: Path,
        quantize: Quantize,
        search: Search,
        expected: evaluate.Outputs,
        units: list[list[str]],
        lighten: Lighten | None = None,
    ) -> None:
        self.base, self.tmp, self.quantize = base, tmp, quantize
        self.search, self.expected, self.units = search, expected, units
        self.lighten = lighten
        self.judged: dict[int, tuple[bool, list[OutputVerdict]]] = {}
        self.lightened: dict[int, list[str]] = {}

    @property
    def tries(self) -> int:
        return len(self.judged)

    def path(self, count: int) -> Path:
        tier = "int8w" if self.lighten else "float"
        return self.tmp / f"keep{count}.{tier}{self.base.suffix}"

    def holds(self, count: int) -> bool:
        if count not in self.judged:
            kept = [n for unit in self.units[:count] for n in unit]
            self.quantize(self.base, kept, self.path(count), None)
            if self.lighten is not None:
                self.lightened[count] = self.lighten(self.path(count), kept)
            reasons, verdicts = judged(self.expected, self.path(count), self.search)
            self.judged[count] = (not reasons, verdicts)
        return self.judged[count][0]

    def fewest(self) -> tuple[int, str]:
        """The fewest units that hold (0: none does) and the figure they hold at."""
        low, count = 0, 1
        while count < len(self.units) and not self.holds(count):
            low, count = count, min(2 * count, len(self.units))
        if not self.units or not self.holds(count):
            return 0, ""
        for _ in range(MAX_BISECTIONS):
            if count - low <= 1:
                break
            mid = (low + count) // 2
            low, count = (low, mid) if self.holds(mid) else (mid, count)
        return count, worst_figure(self.judged[count][1])


def rank(
    base: Path,
    quantized: Sequence[str],
    quantize: Quantize,
    search: Search,
    expected: evaluate.Outputs,
) -> list[list[str]]:
    """The units to keep in float, most harmful first: op-type groups of nested nodes
    (by the fidelity each restores), then main-graph nodes (by their own error)."""
    model = onnx_graph.load(base)
    top = {n.name for n in model.graph.node}
    nested = [n for n in quantized if n not in top]
    groups = _groups_by_gain(model, nested, base, quantize, search, expected)
    sig = evaluate.signature(base)
    errors = local_errors(model, sig, [n for n in quantized if n in top], quantize, search)
    ranked = [n for n in sorted(errors, key=lambda n: -errors[n]) if errors[n] > 0]
    return groups + [[n] for n in ranked] + [[n] for n in errors if errors[n] == UNRANKED]


def _groups_by_gain(
    model: Any,
    names: list[str],
    base: Path,
    quantize: Quantize,
    search: Search,
    expected: evaluate.Outputs,
) -> list[list[str]]:
    """``names`` (nested nodes) grouped by op type, the group whose keeping in float
    restores the most fidelity first."""
    if not names:
        return []
    types = {n.name: n.op_type for g in onnx_graph.graphs(model.graph) for n in g.node}
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(types[name], []).append(name)
    gain: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgeship-fallback-") as tmp:
        for op, members in groups.items():
            path = Path(tmp) / f"{op}.onnx"
            quantize(base, members, path, None)
            gain[op] = _search.health(judged(expected, path, search)[1])
    return [groups[op] for op in sorted(groups, key=lambda op: -gain[op])]


def local_errors(
    model: Any, sig: Signature, names: Sequence[str], quantize: Quantize, search: Search
) -> dict[str, float]:
    """Each main-graph node of ``names`` alone, quantized as the job says and fed the
    base's float activations: its output's relative error ``‖q − f‖ / ‖f‖``
    (:data:`UNRANKED` for a node that does not stand alone)."""
    import onnx

    nodes = [n for n in model.graph.node if n.name in set(names)]
    inits = {i.name: i for i in model.graph.initializer}
    reads = sorted({t for n in nodes for t in n.input if t and t not in inits})
    values = activations(model, sig, reads, search.calls[:RANKING_CALLS])
    errors: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgeship-rank-") as tmp:
        for node in nodes:
            single = Path(tmp) / "node.onnx"
            ins = [t for t in node.input if t and t not in inits]
            if not ins:  # only weights: nothing to quantize at run time, nothing to feed
                errors[node.name] = UNRANKED
                continue
            calls = [{t: values[t][i] for t in ins} for i in range(len(values[ins[0]]))]
            try:
                onnx.save(_single(model, node, inits, values), str(single))
                quantize(single, (), Path(tmp) / "node.q.onnx", calls)
                parts = _parts(node, inits, calls[0])
                errors[node.name] = _relative_error(single, Path(tmp) / "node.q.onnx", calls, parts)
            except Exception:  # a node that does not stand alone (say, an output of
                errors[node.name] = UNRANKED  # another type): ranked after the others
    return errors


def activations(
    model: Any, sig: Signature, names: Sequence[str], calls: Calls
) -> dict[str, list[np.ndarray]]:
    """The values of ``names`` (inputs of ``sig`` or intermediate tensors) on each call."""
    result: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for values in read_out(model, sig, names, calls):
        for n in names:
            result[n].append(values[n])
    return result


def read_out(
    model: Any, sig: Signature, names: Sequence[str], calls: Calls
) -> Iterator[dict[str, np.ndarray]]:
    """The inputs and outputs of ``model`` with ``names`` (intermediate tensors of its
    main graph) among them, call by call: one session, the model made to output them."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    have = {o.name for o in copy.graph.output} | {s.name for s in sig.inputs}
    copy.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
    session = _session(copy.SerializeToString())
    outputs = [o.name for o in session.get_outputs()]
    for call in calls:
        feeds = evaluate.model_feeds(sig, call)
        yield {**feeds, **dict(zip(outputs, session.run(None, feeds), strict=True))}


def _single(
    model: Any, node: Any, inits: dict[str, Any], values: dict[str, list[np.ndarray]]
) -> Any:
    """A model of ``node`` alone: its activations as inputs, its weights as initializers,
    its outputs of its first input's type (the ops INT8 quantizes compute in it)."""
    from onnx import helper

    ins = [t for t in node.input if t and t not in inits]
    types = {t: helper.np_dtype_to_tensor_dtype(values[t][0].dtype) for t in ins}
    graph = helper.make_graph(
        [node],
        "node",
        [helper.make_tensor_value_info(t, types[t], _batched(values[t][0].shape)) for t in ins],
        [helper.make_tensor_value_info(o, types[ins[0]], None) for o in node.output if o],
        [inits[t] for t in node.input if t in inits],
    )
    single = helper.make_model(graph, opset_imports=model.opset_import)
    single.ir_version = model.ir_version
    return single


def _session(model: str | bytes) -> Any:
    """A quiet CPU session: a single-node model that does not stand alone fails, and is
    ranked last, without ONNX Runtime's error lines on the user's terminal."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _batched(shape: tuple[int, ...]) -> list[int | None]:
    """``shape`` with a free first axis: calibration stacks the calls along it."""
    return [None, *shape[1:]] if shape else []


Parts = tuple[int, list[int]]
"""A Concat's axis and where its inputs' parts end along it."""


def _parts(node: Any, inits: dict[str, Any], call: dict[str, np.ndarray]) -> Parts | None:
    """Where each input of a ``Concat`` ends in its output (None for another op): its
    parts share one INT8 scale, which a part of small values beside one of large ones
    loses, as a packed detection head's class scores beside its pixel boxes."""
    if node.op_type != "Concat":
        return None
    from onnx import helper

    axis = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "axis")
    dims = [call[t].shape if t in call else tuple(inits[t].dims) for t in node.input if t]
    return axis, [int(d) for d in np.cumsum([shape[axis] for shape in dims])[:-1]]


def _relative_error(
    float_path: Path, quant_path: Path, calls: Calls, parts: Parts | None = None
) -> float:
    """``‖q − f‖ / ‖f‖`` of the first output over ``calls``; the worst part's for a
    Concat (``parts``): the error of a small part is lost in the norm of a large one."""

    def outputs(path: Path) -> list[np.ndarray]:
        s = _session(str(path))
        values = [np.asarray(s.run(None, c)[0]) for c in calls]
        if parts is None:
            return [np.concatenate([np.ravel(v) for v in values])]
        axis, ends = parts
        split = [np.split(v, ends, axis=axis) for v in values]
        return [np.concatenate([np.ravel(p[k]) for p in split]) for k in range(len(ends) + 1)]

    return max(_error(f, q) for f, q in zip(outputs(float_path), outputs(quant_path), strict=True))


def _error(f: np.ndarray, q: np.ndarray) -> float:
    norm = float(np.linalg.norm(f))
    return float(np.linalg.norm(q - f)) / norm if norm > 0 else float(np.linalg.norm(q))
