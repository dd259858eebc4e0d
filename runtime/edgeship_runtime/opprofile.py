"""Per-operator profiles: which operators take the time, in a profiling session of its own.

As trtexec's ``--separateProfileRun``: the model's timed session is never profiled. The
backend opens a second session of the same file with the same options and its profiler
on (:class:`~.backends.base.OpProfiling`); both are warmed up, then run in turn, so the
plain session's end-to-end median measured here gives the profiler's overhead. Per node
the median over the profiled runs, per op type the sum of its nodes' medians; the
operators' summed time per run is reconciled with the end-to-end time of the same runs,
the gap reported as time outside the operators.

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

NOT_EXPOSED = {"tflite": "per-op timing: not exposed by LiteRT's Python interpreter"}
"""Why a backend without the capability has no per-operator times, by backend name."""

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
    report = summarize(
        trace.runs[-policy.runs :], plain, profiled, name, policy.warmup, "; ".join(notes)
    )
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
    """Per node and per op type, and the reconciliation with end-to-end times (pure)."""
    if not runs:
        return OpProfile(available=False, backend=backend, note="the profiler recorded no runs")
    per_node, first = _per_node_us(runs)
    medians = {name: float(np.median(values)) for name, values in per_node.items()}
    total_us = sum(medians.values()) or 1.0
    nodes = [
        _node_time(first[name], us / 1000.0, us / total_us)
        for name, us in sorted(medians.items(), key=lambda item: -item[1])
    ]
    ops_ms = float(np.median([sum(n.dur_us for n in run.nodes) for run in runs])) / 1000.0
    profiled = float(np.median(profiled_ms)) if len(profiled_ms) else None
    plain = float(np.median(plain_ms)) if len(plain_ms) else None
    return OpProfile(
        available=True,
        backend=backend,
        runs=len(runs),
        warmup=warmup,
        note=note or None,
        nodes=nodes,
        op_types=op_types(nodes),
        ops_ms=ops_ms,
        session_ms=float(np.median([run.dur_us for run in runs])) / 1000.0,
        profiled_ms=profiled,
        plain_ms=plain,
        outside_ops_ms=None if profiled is None else profiled - ops_ms,
        profiler_overhead=profiled / plain - 1.0 if profiled and plain else None,
    )


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


def _node_time(node: TracedNode, median_ms: float, share: float) -> NodeTime:
    return NodeTime(
        name=node.name,
        op_type=node.op_type,
        median_ms=median_ms,
        share=share,
        provider=node.provider,
        input_shapes=[list(s) for s in node.input_shapes],
        output_shapes=[list(s) for s in node.output_shapes],
    )


def op_types(nodes: Sequence[NodeTime]) -> List[OpTypeTime]:
    """Nodes grouped by op type, the slowest type first."""
    groups: Dict[str, List[NodeTime]] = {}
    for node in nodes:
        groups.setdefault(node.op_type, []).append(node)
    total = sum(n.median_ms for n in nodes) or 1.0
    types = [
        OpTypeTime(
            op_type=op_type,
            nodes=len(members),
            total_ms=sum(n.median_ms for n in members),
            share=sum(n.median_ms for n in members) / total,
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
    """One line: the reconciliation, or why there are no per-operator times."""
    if ops is None:
        return ""
    if not ops.available:
        return ops.note or "per-op timing: not available"
    parts = [f"operators {ops.ops_ms:.3f} ms of {ops.profiled_ms:.3f} ms end-to-end"]
    if ops.outside_ops_ms is not None and ops.profiled_ms:
        share = 100 * ops.outside_ops_ms / ops.profiled_ms
        parts.append(f"outside operators {ops.outside_ops_ms:.3f} ms ({share:.0f} %)")
    if ops.profiler_overhead is not None:
        parts.append(
            f"profiler overhead {100 * ops.profiler_overhead:+.1f} % "
            f"(plain session {ops.plain_ms:.3f} ms)"
        )
    return "; ".join(parts)
