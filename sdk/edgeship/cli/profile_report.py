"""``edgeship profile --report DIR``: ``profile.json`` (the data: the reports, as
``--json`` prints them), ``profile.md`` and a self-contained ``profile.html`` (views),
figures as ``figures/*.png``; the same layout as ``ab --report``.

Every table and figure is drawn from the reports' typed fields through the rows the
terminal shows (:func:`~edgeship.cli.output.profile_rows`, :mod:`.measure_view`): the
latency distribution is each model's ``samples_ms`` (requested from the runtime, as
``--samples`` does) with the ``latency_ms`` percentiles marked; the per-operator bars are
``ops.op_types`` and ``ops.nodes`` as the runtime reported them; the validity, fallback
and energy lines are the terminal's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeship.cli.measure_view import (
    TEXT_COLUMNS,
    TOP_OPS,
    energy_line,
    fallback_line,
    input_shapes,
    model_name,
    ops_heading,
    ops_node_rows,
    ops_type_rows,
    validity_line,
)
from edgeship.cli.output import profile_footer, profile_heading, profile_rows
from edgeship.core.views import (
    COLORS,
    Plot,
    ReportFiles,
    escape,
    figure_html,
    html_table,
    md_table,
    new_figure,
    page,
    png,
    slug,
    write_report_files,
)
from edgeship_runtime.opprofile import summary_line
from edgeship_runtime.report import OpProfile, ProfileReport

__all__ = [
    "TEXT_COLUMNS",
    "Profiled",
    "all_plots",
    "latency_plot",
    "ops_plot",
    "render_html",
    "render_markdown",
    "write_report",
]

Profiled = Sequence[tuple[str, Sequence[ProfileReport]]]
"""Each target's name and the reports of the models profiled on it, in order."""

_PURPOSE = "writing a profile report"


def write_report(profiled: Profiled, directory: Path, top: int = TOP_OPS) -> ReportFiles:
    """``profile.json``, ``profile.md`` and ``profile.html`` under ``directory``."""
    data = [r.to_dict() for _, reports in profiled for r in reports]
    return write_report_files(
        directory,
        "profile",
        json.dumps(data, indent=2) + "\n",
        all_plots(profiled, top),
        lambda links: render_markdown(profiled, links, top),
        lambda plots: render_html(profiled, plots, top),
    )


def _title(profiled: Profiled) -> str:
    names = dict.fromkeys(model_name(r) for _, reports in profiled for r in reports)
    return f"Profile: {', '.join(names)}"


def _notes(report: ProfileReport) -> list[str]:
    """The model's fallback, validity and energy lines, as the terminal prints them."""
    name = model_name(report)
    lines = [
        fallback_line(name, report.backend),
        validity_line(name, report.validity),
        energy_line(name, report.energy),
    ]
    return [line for line in lines if line]


def _ops_text(ops: OpProfile) -> list[str]:
    """The reconciliation line and the profile's note (or why there are no times)."""
    return [summary_line(ops), *([f"note: {ops.note}"] if ops.available and ops.note else [])]


def render_markdown(profiled: Profiled, links: Mapping[str, str], top: int = TOP_OPS) -> str:
    out = [f"# {_title(profiled)}", ""]
    for target, reports in profiled:
        out += [f"## {target}", "", profile_heading(reports), "", md_table(profile_rows(reports))]
        out += ["", profile_footer(reports), "", *input_shapes(reports).splitlines(), ""]
        out += [f"- {line}" for r in reports for line in _notes(r)]
        out += _md_figure(links, _latency_title(target))
        for report in reports:
            ops = report.ops
            if ops is None:
                continue
            name = model_name(report)
            if ops.available:
                out += ["", f"### {ops_heading(name, ops, top)}", ""]
                out += [md_table(ops_node_rows(ops, top)), "", md_table(ops_type_rows(ops))]
            else:
                out += ["", f"### {name}: per operator"]
            out += ["", *_ops_text(ops), *_md_figure(links, _ops_title(target, name))]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md_figure(links: Mapping[str, str], title: str) -> list[str]:
    return ["", f"![{title}]({links[title]})"] if title in links else []


def _latency_title(target: str) -> str:
    return f"Latency distribution on {target}"


def _ops_title(target: str, model: str) -> str:
    return f"Operators of {model} on {target}"


def render_html(profiled: Profiled, plots: Sequence[Plot] = (), top: int = TOP_OPS) -> str:
    title = _title(profiled)
    body = [f"<h1>{escape(title)}</h1>"]
    for target, reports in profiled:
        key = slug(target)
        body += [
            f'<h2 id="target-{key}">{escape(target)}</h2>',
            f'<p class="muted">{escape(profile_heading(reports))}</p>',
            html_table(profile_rows(reports), f"profile-table-{key}", TEXT_COLUMNS),
            f'<p class="muted">{escape(profile_footer(reports))}</p>',
            *(f"<p>{escape(line)}</p>" for line in input_shapes(reports).splitlines()),
        ]
        notes = [line for r in reports for line in _notes(r)]
        if notes:
            items = "".join(f"<li>{escape(line)}</li>" for line in notes)
            body.append(f'<ul id="validity-{key}">{items}</ul>')
        body += [figure_html(p) for p in plots if p.name == f"latency-{key}"]
        for report in reports:
            body += _ops_section(target, report, plots, top)
    return page(title, body)


def _ops_section(target: str, report: ProfileReport, plots: Sequence[Plot], top: int) -> list[str]:
    ops = report.ops
    if ops is None:
        return []
    name = model_name(report)
    key = slug(f"{target}-{name}")
    if not ops.available:
        return [f'<h3 id="ops-{key}">{escape(name)}: per operator</h3>', _paragraphs(ops)]
    return [
        f'<h3 id="ops-{key}">{escape(ops_heading(name, ops, top))}</h3>',
        html_table(ops_node_rows(ops, top), f"ops-nodes-{key}", TEXT_COLUMNS),
        html_table(ops_type_rows(ops), f"ops-types-{key}", TEXT_COLUMNS),
        _paragraphs(ops),
        *(figure_html(p) for p in plots if p.name == f"ops-{key}"),
    ]


def _paragraphs(ops: OpProfile) -> str:
    return "\n".join(f'<p class="muted">{escape(line)}</p>' for line in _ops_text(ops))


def latency_plot(target: str, reports: Sequence[ProfileReport]) -> Plot | None:
    """Per model, a histogram of every timed run (``samples_ms``) with its report's p50,
    p90 and p99 marked (a log axis when the slowest run is over 10× the fastest); None
    when no model has its samples."""
    import numpy as np

    sampled = [r for r in reports if r.samples_ms]
    if not sampled:
        return None
    fig = new_figure(8, 0.6 + 2.4 * len(sampled), _PURPOSE)
    axes = fig.subplots(len(sampled), 1, squeeze=False)[:, 0]
    for ax, report, color in zip(axes, sampled, COLORS * len(sampled), strict=False):
        samples = report.samples_ms or []
        lat = report.latency_ms
        bins: Any = min(80, max(10, len(samples) // 10))
        if lat.min > 0 and lat.max / lat.min > 10:  # a long tail: bins even on a log axis
            bins = np.geomspace(lat.min, lat.max, bins + 1)
            ax.set_xscale("log")
        ax.hist(samples, bins=bins, color=color, alpha=0.8)
        for label, value, style in (("p50", lat.p50, "-"), ("p90", lat.p90, "--"),
                                    ("p99", lat.p99, ":")):  # fmt: skip
            ax.axvline(value, color="black", ls=style, lw=1, label=f"{label} {value:.4f} ms")
        ax.set_title(f"{model_name(report)}: {len(samples)} timed runs", fontsize="medium")
        ax.set_xlabel("latency per run (ms)")
        ax.set_ylabel("runs")
        ax.legend(fontsize="small", loc="upper right")
        ax.grid(alpha=0.3)
    return Plot(f"latency-{slug(target)}", _latency_title(target), png(fig))


def ops_plot(target: str, report: ProfileReport, top: int = TOP_OPS) -> Plot | None:
    """Bars of each op type's total and of the ``top`` slowest nodes' medians, as the
    report's per-operator profile has them; None without per-operator times."""
    ops = report.ops
    if ops is None or not ops.available or not ops.op_types:
        return None
    types, nodes = ops.op_types, ops.nodes[:top]
    fig = new_figure(8, 1.6 + 0.28 * (len(types) + len(nodes)), _PURPOSE)
    by_type, by_node = fig.subplots(
        2, 1, height_ratios=[max(len(types), 1), max(len(nodes), 1)], squeeze=True
    )
    by_type.barh([t.op_type for t in types][::-1], [t.total_ms for t in types][::-1],
                 color=COLORS[0])  # fmt: skip
    by_type.set_xlabel("ms per run, summed over the op type's nodes")
    by_node.barh([_short(n.name) for n in nodes][::-1], [n.time_ms for n in nodes][::-1],
                 color=COLORS[1])  # fmt: skip
    by_node.set_xlabel(f"median ms per run of the {len(nodes)} slowest nodes")
    for ax in (by_type, by_node):
        ax.tick_params(axis="y", labelsize="small")
        ax.grid(axis="x", alpha=0.3)
    name = model_name(report)
    by_type.set_title(f"{name}: median of {ops.runs} profiled runs", fontsize="medium")
    key = slug(f"{target}-{name}")
    return Plot(f"ops-{key}", _ops_title(target, name), png(fig))


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def all_plots(profiled: Profiled, top: int = TOP_OPS) -> list[Plot]:
    """Per target its latency distribution, then each model's operators."""
    plots: list[Plot | None] = []
    for target, reports in profiled:
        plots.append(latency_plot(target, reports))
        plots += [ops_plot(target, r, top) for r in reports]
    return [p for p in plots if p is not None]
