"""The A/B report as Markdown: the tables of :mod:`.table`, figures as linked PNG files."""

from __future__ import annotations

from collections.abc import Mapping

from edgeship.ab.result import ABReport, DeviceAB
from edgeship.ab.table import (
    VALIDITY_NOTE,
    comparison_rows,
    detectable_note,
    device_heading,
    device_name,
    front_line,
    gate_rows,
    model_rows,
    model_validity_lines,
    ops_heading,
    ops_reconciliation,
    ops_rows,
    pooled_rows,
    unchecked_line,
    validity_rows,
    validity_summary,
    verdict,
)
from edgeship.core.views import md_table

__all__ = [
    "method_text",
    "ops_section",
    "outputs_section",
    "render",
    "summary_line",
    "validity_section",
]


def summary_line(report: ABReport) -> str:
    state, detail = verdict(report)
    return f"**{state}**: {detail}" if state else f"{detail[0].upper()}{detail[1:]}."


def method_text(report: ABReport) -> str:
    d = report.design
    rounds = (
        f"rounds (at least {d.rounds}) until every model had {d.min_seconds:g} s of timed runs"
        if d.min_seconds
        else f"{d.rounds} rounds"
    )
    planned = f" (planned for a detectable change of {d.precision:.1%})" if d.precision else ""
    return (
        f"Every model ran in one runtime process per device, in {d.sessions} or more "
        f"sessions{planned} (a fresh load of every model, in random order); each session "
        f"ran {rounds}, each round a random order of the models making {d.block} "
        f"consecutive timed runs, after {d.warmup} warm-up runs; ONNX Runtime's thread "
        "pools slept as each run ended (spinning, a model idle between its blocks takes the "
        f"timed one's CPUs). Test: {d.test} (alpha "
        f"{d.alpha:g}); the detectable change comes from the std of the session medians. "
        "Interval: "
        f"{d.interval} ({d.confidence:.0%}, {d.bootstrap} resamples). Memory: each model in "
        "a fresh runtime process. Seed "
        f"{d.seed}."
    )


def outputs_section(device: DeviceAB) -> list[str]:
    """Every output of each variant against the base's, judged by its kind."""
    lines = [
        f"- {c.variant}: {v.line()}"
        for c in device.comparisons
        if c.agreement is not None
        for v in c.agreement.outputs
    ]
    return ["Every output against the base's, by its kind:", "", *lines, ""] if lines else []


def validity_section(device: DeviceAB) -> list[str]:
    """Per session its verdict, reasons, warm-up and conditions (none from an old runtime)."""
    if not device.validity:
        return []
    out = [f"### Validity on {device_name(device)}", "", validity_summary(device) + ".", ""]
    out += [f"- {line}" for line in model_validity_lines(device)]
    out += [""] if model_validity_lines(device) else []
    out += [md_table(validity_rows(device)), "", VALIDITY_NOTE, ""]
    unchecked = unchecked_line(device)
    return out + ([f"{unchecked[0].upper()}{unchecked[1:]}.", ""] if unchecked else [])


def ops_section(device: DeviceAB) -> list[str]:
    """Per variant, its op types against the base's (``--ops``), or why there are none."""
    base = device.models[0].name
    checks = [f"- {c}" for c in ops_reconciliation(device)]
    out = ["### Per-operator profiles, ms per run", "", *checks, ""] if checks else []
    for diff in device.op_diffs:
        heading = ops_heading(diff, base)
        out += [f"### {heading[0].upper()}{heading[1:]}", ""]
        out += [md_table(ops_rows(diff, base)), ""] if diff.rows else []
    return out


def render(report: ABReport, figures: Mapping[str, str] | None = None) -> str:
    """Markdown; ``figures`` maps a figure's title to its path relative to the file."""
    figures = figures or {}
    out = [
        f"# A/B: {report.base} against {', '.join(report.variants)}",
        "",
        summary_line(report),
        "",
        method_text(report),
        "",
    ]
    for device in report.devices:
        name = device_name(device)
        out += [f"## {name}", "", device_heading(device, report), ""]
        out += [md_table(model_rows(device)), "", md_table(comparison_rows(device)), ""]
        out += outputs_section(device)
        detectable = [f"{line}." for line in detectable_note(device)]
        out += [*detectable, ""] if detectable else []
        out += [front_line(device), ""]
        out += validity_section(device) + ops_section(device)
        out += [f"![{t}]({p})" for t, p in figures.items() if t.endswith(f" on {name}")]
        out.append("")
    if report.pooled:
        out += ["## Pooled over devices", "", md_table(pooled_rows(report)), ""]
    if "Speedup and its interval" in figures:
        out += [f"![Speedup and its interval]({figures['Speedup and its interval']})", ""]
    if report.gates:
        out += ["## Gates", "", md_table(gate_rows(report)), ""]
    if report.failures:
        out += ["## Failed devices", ""]
        out += [f"- {f.target}: {f.type}: {f.message}" for f in report.failures]
        out.append("")
    out.append(f"Schema {report.schema}, created {report.created_at}.")
    return "\n".join(out) + "\n"
