"""Per-operator profiles: which operators take the time, in a profiling session of its own.

As trtexec's ``--separateProfileRun``: the model's timed session is never profiled. The
backend opens a second session of the same file with the same options and its profiler
on (:class:`~.backends.base.OpProfiling`); both are warmed up, then run in turn, so the
plain session's end-to-end time measured here gives the profiler's overhead.

One computation for every view (profile's and ab's tables, JSON, HTML): each figure is
a mean over the same central runs, the middle half of the profiled runs ranked by
end-to-end time. Means add up, so nodes sum to their op type, op types to the
operators' total, and operators plus the time outside them to the end-to-end time with
the profiler; a median per node would not (summed over a few hundred nodes, medians fell
a third short of the runs' own totals). :func:`summary_line` sets that sum against the
plain session's end-to-end time, the gap being the profiler's overhead.

A backend without per-operator timing (LiteRT's Python interpreter exposes none) gets a
report that says so in one line, never invented numbers.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .backends import SessionOptions, get_backend
from .backends.base import TracedNode, TracedRun, op_profiling
from .errors import UsageError
from .model import LoadedModel
from .report import NodeTime, OpProfile, OpTypeTime

RECONCILED = 0.10
"""Operators plus the time outside them should come within this fraction of the plain
session's end-to-end time (the profiler's overhead); beyond it the line says so."""

OVERSTATED = 10.0
"""An operator shorter than this many times the profiler's cost per operator may be
overstated by more than 1/OVERSTATED: that cost lies partly inside each recorded time."""

NOT_EXPOSED = {
    "tflite": (
        "per-op timing: not exposed by LiteRT's Python API (its op profiler is C++ only: "
        "benchmark_model --enable_op_profiling)"
    )
}
"""Why a backend without the capability has no per-operator times, by backend name.
ai_edge_litert 2.3's ``Interpreter`` and ``CompiledModel`` wrap no profiler (the flag
``experimental_force_delegate_node_profiling`` records delegate nodes, with no call
that reads them back)."""

Run = Callable[[Mapping[str, np.ndarray]], Any]


@dataclass(frozen=True)
class OpsPolicy:
    """``warmup`` untimed runs of each session, then ``runs`` profiled runs, each after a
    plain run; ``trace``: return the profiler's raw trace events too."""

    runs: int = 100
    warmup: int = 10
    trace: bool = False

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"runs must be at least 1, got {self.runs}")
        if self.warmup < 0:
            raise UsageError(f"warmup must be 0 or more, got {self.warmup}")


def not_exposed(backend: str) -> str:
    return NOT_EXPOSED.get(backend, f"per-op timing: not exposed by the {backend} backend")


def profile_ops(
    model: LoadedModel, feeds: Mapping[str, np.ndarray], policy: OpsPolicy
) -> OpProfile:
    """The per-operator profile of ``model`` (loaded) on ``feeds``."""
    name = model.backend.name
    profiler = op_profiling(get_backend(name))
    if profiler is None:
        return OpProfile(available=False, backend=name, note=not_exposed(name))
    options = model.extra.get("session_options")
    if not isinstance(options, SessionOptions):
        options = SessionOptions()
    directory = tempfile.mkdtemp(prefix="edgeship-ops-")
    try:
        session = profiler.open_profiling(model.info.path, options, directory)
        try:
            plain, profiled = time_in_turn(model.session.run, session.run, feeds, policy)
        finally:
            trace = session.finish()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    notes = []
    if options.execution_mode == "parallel":
        notes.append("operators ran in parallel: their sum can exceed the run's time")
    timed = trace.runs[policy.warmup :][: len(profiled)]
    if len(timed) < len(profiled):  # ONNX Runtime stops recording at a million events
        notes.append(f"the profiler recorded {len(timed)} of the {len(profiled)} runs")
    report = summarize(timed, plain, profiled[: len(timed)], name, policy.warmup, "; ".join(notes))
    report.trace = trace.events if policy.trace else None
    return report


def time_in_turn(
    plain: Run, profiled: Run, feeds: Mapping[str, np.ndarray], policy: OpsPolicy
) -> Tuple[List[float], List[float]]:
    """End-to-end ms of both sessions, run in turn (which goes first alternates), the
    garbage collector paused as in the timed profile."""
    for _ in range(policy.warmup):
        plain(feeds)
        profiled(feeds)
    times: Tuple[List[float], List[float]] = ([], [])
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(policy.runs):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for which in order:
                run = plain if which == 0 else profiled
                t0 = time.perf_counter_ns()
                run(feeds)
                times[which].append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def summarize(
    runs: Sequence[TracedRun],
    plain_ms: Sequence[float],
    profiled_ms: Sequence[float],
    backend: str,
    warmup: int = 0,
    note: str = "",
) -> OpProfile:
    """Per node and per op type, and the reconciliation with end-to-end times (pure).

    ``profiled_ms[i]`` is the end-to-end time of ``runs[i]`` (an empty list: unknown).
    Every figure is a mean over the same central runs (:func:`central_runs`, ranked by
    end-to-end time, or by the operators' total when that is unknown), so nodes sum to
    their op type, op types to ``ops_ms``, and ``ops_ms + outside_ops_ms`` to
    ``profiled_ms``; ``plain_ms`` is the same statistic over the plain session's runs.
    """
    if not runs:
        return OpProfile(available=False, backend=backend, note="the profiler recorded no runs")
    if profiled_ms and len(profiled_ms) != len(runs):
        raise ValueError(f"{len(profiled_ms)} end-to-end times for {len(runs)} traced runs")
    totals_ms = [sum(n.dur_us for n in run.nodes) / 1000.0 for run in runs]
    central = central_runs(profiled_ms or totals_ms)
    per_node, first = _per_node_us([runs[i] for i in central])
    means_ms = {name: float(np.mean(values)) / 1000.0 for name, values in per_node.items()}
    ops_ms = sum(means_ms.values())
    nodes = [
        _node_time(first[name], ms, ms / ops_ms if ops_ms else 0.0)
        for name, ms in sorted(means_ms.items(), key=lambda item: -item[1])
    ]
    profiled = _mean_of(profiled_ms, central) if profiled_ms else None
    plain = central_mean(plain_ms) if len(plain_ms) else None
    return OpProfile(
        available=True,
        backend=backend,
        runs=len(runs),
        central_runs=len(central),
        warmup=warmup,
        note=note or None,
        nodes=nodes,
        op_types=op_types(nodes),
        ops_ms=ops_ms,
        session_ms=_mean_of([run.dur_us / 1000.0 for run in runs], central),
        profiled_ms=profiled,
        plain_ms=plain,
        outside_ops_ms=None if profiled is None else profiled - ops_ms,
        profiler_overhead=profiled / plain - 1.0 if profiled and plain else None,
    )


def central_runs(values: Sequence[float]) -> List[int]:
    """Indices of the middle half of ``values`` (a quarter of them dropped at each end, the
    rest in run order): the runs an interquartile mean averages over; all of them when
    there are fewer than four."""
    drop = len(values) // 4
    ranked = sorted(range(len(values)), key=lambda i: values[i])
    return sorted(ranked[drop : len(values) - drop])


def central_mean(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the middle half of ``values``."""
    return _mean_of(values, central_runs(values))


def _mean_of(values: Sequence[float], indices: Sequence[int]) -> float:
    return float(np.mean([values[i] for i in indices]))


def _per_node_us(
    runs: Sequence[TracedRun],
) -> Tuple[Dict[str, List[float]], Dict[str, TracedNode]]:
    """Per node name its time in each run (µs; a node run twice in a run counts both, a
    node that did not run in a run counts 0 there), and its first occurrence."""
    per_node: Dict[str, List[float]] = {}
    first: Dict[str, TracedNode] = {}
    for i, run in enumerate(runs):
        for node in run.nodes:
            first.setdefault(node.name, node)
            values = per_node.setdefault(node.name, [])
            values.extend([0.0] * (i + 1 - len(values)))
            values[i] += node.dur_us
    for values in per_node.values():
        values.extend([0.0] * (len(runs) - len(values)))
    return per_node, first


def _node_time(node: TracedNode, ms: float, share: float) -> NodeTime:
    return NodeTime(
        name=node.name,
        op_type=node.op_type,
        time_ms=ms,
        share=share,
        provider=node.provider,
        input_shapes=[list(s) for s in node.input_shapes],
        output_shapes=[list(s) for s in node.output_shapes],
    )


def op_types(nodes: Sequence[NodeTime]) -> List[OpTypeTime]:
    """Nodes grouped by op type (their times and shares summed), the slowest type first."""
    groups: Dict[str, List[NodeTime]] = {}
    for node in nodes:
        groups.setdefault(node.op_type, []).append(node)
    types = [
        OpTypeTime(
            op_type=op_type,
            nodes=len(members),
            total_ms=sum(n.time_ms for n in members),
            share=sum(n.share for n in members),
        )
        for op_type, members in groups.items()
    ]
    return sorted(types, key=lambda t: -t.total_ms)


def op_type_diff(
    base: Sequence[OpTypeTime], variant: Sequence[OpTypeTime]
) -> List[Tuple[str, float, float]]:
    """(op type, base ms, variant ms) for every op type of either, the largest change
    first; an op type one of them lacks counts 0 ms there."""
    b = {t.op_type: t.total_ms for t in base}
    v = {t.op_type: t.total_ms for t in variant}
    rows = [(name, b.get(name, 0.0), v.get(name, 0.0)) for name in dict.fromkeys([*b, *v])]
    return sorted(rows, key=lambda r: -abs(r[2] - r[1]))


def summary_line(ops: Optional[OpProfile]) -> str:
    """One line: the reconciliation (operators + outside = end-to-end with the profiler,
    against the plain session's end-to-end time), or why there are no per-operator times."""
    if ops is None:
        return ""
    if not ops.available:
        return ops.note or "per-op timing: not available"
    if ops.profiled_ms is None or ops.outside_ops_ms is None:
        return f"operators {ops.ops_ms:.4f} ms"
    parts = [
        f"operators {ops.ops_ms:.4f} + outside them {ops.outside_ops_ms:.4f} = "
        f"{ops.profiled_ms:.4f} ms end-to-end with the profiler"
    ]
    if ops.plain_ms is not None and ops.profiler_overhead is not None:
        overhead = f"profiler overhead {100 * ops.profiler_overhead:+.1f} %"
        if abs(ops.profiler_overhead) <= RECONCILED:
            verdict = f"within {100 * RECONCILED:.0f} %"
        else:
            per_op_us = cost_per_operator_us(ops) or 0.0
            verdict = f"beyond {100 * RECONCILED:.0f} %{_overstated(ops.nodes, per_op_us)}"
        parts.append(f"{ops.plain_ms:.4f} ms without: {overhead} ({verdict})")
    return "; ".join(parts) + f" ({statistic(ops)})"


def cost_per_operator_us(ops: OpProfile) -> Optional[float]:
    """The profiler's cost per operator in µs: (profiled − plain) / nodes; None without
    both end-to-end times."""
    if ops.profiled_ms is None or ops.plain_ms is None:
        return None
    return 1000 * (ops.profiled_ms - ops.plain_ms) / max(len(ops.nodes), 1)


def _overstated(nodes: Sequence[NodeTime], per_op_us: float) -> str:
    """What the profiler's cost per operator does to the operators' own times: part of it
    falls inside them, so an operator not much longer than that cost is overstated, in
    milliseconds and in share (ONNX Runtime 1.32 on a 2-core VM, by
    ``tools/bench/op_profile.py``: 1.8-4.2 µs of a tiny Neg's to Conv's recorded time,
    against 0.2-0.9 µs of real work)."""
    if per_op_us <= 0:
        return ""
    short = [n for n in nodes if 1000 * n.time_ms < OVERSTATED * per_op_us]
    said = f": the profiler costs about {per_op_us:.1f} µs per operator, part of it in their times"
    if not short:
        return f"{said}; every operator runs over {OVERSTATED:.0f}× that"
    share = sum(n.share for n in short)
    bound_ms = OVERSTATED * per_op_us / 1000
    return (
        f"{said}; {len(short)} of {len(nodes)} operators ({100 * share:.0f} % of the "
        f"operators' time) run under {OVERSTATED:.0f}× that ({bound_ms:.4f} ms): their times "
        f"and shares may be overstated by more than {100 / OVERSTATED:.0f} %"
    )


def statistic(ops: OpProfile) -> str:
    """What every figure of ``ops`` is, in words."""
    return f"means of the middle {ops.central_runs} of {ops.runs} runs"
