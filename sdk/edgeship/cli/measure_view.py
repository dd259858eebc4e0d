"""Human views of what a profile says about its own figures: the validity verdict, energy
per inference and the per-operator profile (the JSON holds the same data in full)."""

from __future__ import annotations

from collections.abc import Sequence

from edgeship.core.views import Rows, text_table
from edgeship_runtime.guards import explain
from edgeship_runtime.opprofile import statistic, summary_line
from edgeship_runtime.report import (
    BackendUsage,
    EnergyReport,
    LatencyStats,
    OpProfile,
    ProfileReport,
    Validity,
)

__all__ = [
    "TEXT_COLUMNS",
    "TOP_OPS",
    "energy_line",
    "fallback_line",
    "input_shapes",
    "model_name",
    "ops_heading",
    "ops_node_rows",
    "ops_type_rows",
    "ops_view",
    "profile_notes",
    "validity_line",
]

TEXT_COLUMNS = frozenset(["model", "backend", "node", "op type", "provider", "input shapes"])
"""Columns aligned left (terminal and HTML); the others hold numbers."""
TOP_OPS = 10
"""Nodes shown in the per-operator table (all of them are in the JSON)."""


def model_name(report: ProfileReport) -> str:
    return report.model.path.rsplit("/", 1)[-1]


def input_shapes(reports: Sequence[ProfileReport]) -> str:
    """The inputs each model was measured on (``inputs: cnn.onnx x [1, 1, 8, 8]``)."""
    return "\n".join(
        f"inputs: {r.model.path.rsplit('/', 1)[-1]} "
        + ", ".join(f"{t.name} {t.shape} {t.dtype}" for t in r.inputs)
        for r in reports
    )


def validity_line(
    name: str, validity: Validity | None, latency: LatencyStats | None = None
) -> str | None:
    """One line per model: ``NAME: stable (1.02 s of timed runs: 6231 runs after 17
    warm-up runs, settled)``, or ``warning: NAME: unstable: the causes in words → the
    remedy (the window; the first reason)``; every reason is in the JSON."""
    if validity is None:
        return None
    warm = f"after {validity.warmup_runs} warm-up runs"
    if validity.warmup_settled:
        warm += ", settled"
    if latency is not None:
        warm = f"{latency.n * latency.mean / 1000:.2f} s of timed runs: {latency.n} runs {warm}"
    if validity.verdict == "stable":
        unchecked = f"; unchecked: {', '.join(validity.unchecked)}" if validity.unchecked else ""
        return f"{name}: stable ({warm}{unchecked})"
    why = explain(validity.causes)
    if not why:  # a report from a runtime that gives no causes
        return f"warning: {name}: unstable: {'; '.join(validity.reasons)} ({warm})"
    n = len(validity.reasons)
    first = f"; {n} reasons, the first: " if n > 1 else "; the reason: "
    first += validity.reasons[0]
    return f"warning: {name}: unstable: {why} ({warm}{first})"


def fallback_line(name: str, backend: BackendUsage) -> str | None:
    """``warning: NAME: TensorrtExecutionProvider asked for, not run: ...`` when the
    session fell back: GPU providers missing, or failing to start, leave CPU figures."""
    if not backend.providers_not_run:
        return None
    return (
        f"warning: {name}: {', '.join(backend.providers_not_run)} asked for, not run "
        f"(absent or failed to start): these figures are {', '.join(backend.providers)}'s"
    )


def energy_line(name: str, energy: EnergyReport | None) -> str | None:
    if energy is None:
        return None
    readings = [
        f"{s.mj_per_inference:.4g} mJ/inference, {s.average_w:.3g} W average ({s.sensor})"
        for s in energy.sensors
    ]
    text = f"energy: {name}: {'; '.join(readings) if readings else ''}"
    if energy.note:
        text += f"{'; ' if readings else ''}{energy.note}"
    return text


def ops_node_rows(ops: OpProfile, top: int = TOP_OPS) -> Rows:
    """The ``top`` slowest nodes of the per-operator profile, as the report has them."""
    headers = ["node", "op type", "provider", "ms", "share %", "input shapes"]
    rows = [
        [
            n.name,
            n.op_type,
            (n.provider or "-").replace("ExecutionProvider", ""),
            f"{n.time_ms:.4f}",
            f"{100 * n.share:.1f}",
            " ".join("x".join(str(d) for d in s) for s in n.input_shapes) or "-",
        ]
        for n in ops.nodes[:top]
    ]
    return headers, rows


def ops_type_rows(ops: OpProfile) -> Rows:
    """Every op type of the per-operator profile, as the report has them."""
    headers = ["op type", "nodes", "total ms", "share %"]
    rows = [
        [t.op_type, str(t.nodes), f"{t.total_ms:.4f}", f"{100 * t.share:.1f}"] for t in ops.op_types
    ]
    rows.append(["all operators", str(len(ops.nodes)), f"{ops.ops_ms or 0.0:.4f}", "100.0"])
    return headers, rows


def ops_heading(name: str, ops: OpProfile, top: int = TOP_OPS) -> str:
    shown = f"top {min(top, len(ops.nodes))} of {len(ops.nodes)} nodes"
    return f"{name}: per operator, ms per run ({statistic(ops)}; {shown})"


def ops_view(name: str, ops: OpProfile | None, top: int = TOP_OPS) -> str | None:
    """The slowest nodes, every op type, and the reconciliation line."""
    if ops is None:
        return None
    if not ops.available:
        return f"{name}: {summary_line(ops)}"
    parts = [
        ops_heading(name, ops, top),
        text_table(ops_node_rows(ops, top), TEXT_COLUMNS),
        "",
        text_table(ops_type_rows(ops), TEXT_COLUMNS),
        summary_line(ops),
    ]
    if ops.note:
        parts.append(f"note: {ops.note}")
    return "\n".join(parts)


def profile_notes(reports: Sequence[ProfileReport], top: int = TOP_OPS) -> str:
    """Every model's verdict, energy and per-operator profile, as lines after the table."""
    lines = [fallback_line(model_name(r), r.backend) or "" for r in reports]
    lines += [validity_line(model_name(r), r.validity, r.latency_ms) or "" for r in reports]
    for report in reports:  # a note every model shares (no sensor) once
        energy = report.energy
        if energy is not None and energy.sensors:
            lines.append(energy_line(model_name(report), energy) or "")
        elif energy is not None and energy.note and f"energy: {energy.note}" not in lines:
            lines.append(f"energy: {energy.note}")
    lines = [line for line in lines if line]
    for report in reports:
        view = ops_view(model_name(report), report.ops, top)
        if view:
            lines += ["", view]
    return "\n".join(lines)
