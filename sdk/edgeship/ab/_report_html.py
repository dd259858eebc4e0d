"""The A/B report as one self-contained HTML page (:func:`edgeship.core.views.page`):
the tables of :mod:`.table`, figures as base64 PNG."""

from __future__ import annotations

from collections.abc import Sequence

from edgeship.ab._report_md import method_text
from edgeship.ab.result import ABReport, DeviceAB
from edgeship.ab.table import (
    TEXT_COLUMNS,
    VALIDITY_NOTE,
    Rows,
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
from edgeship.core.views import Plot, figure_html, page, slug
from edgeship.core.views import escape as _e
from edgeship.core.views import html_table as _html_table

__all__ = ["html_table", "ops_section", "render", "summary", "validity_section"]


def html_table(rows: Rows, table_id: str = "") -> str:
    """``rows`` as a table, the A/B's text columns aligned left."""
    return _html_table(rows, table_id, TEXT_COLUMNS)


def summary(report: ABReport) -> str:
    """The verdict paragraph: PASS/FAIL and its grounds, or that no gates were set."""
    state, detail = verdict(report)
    if state is None:
        return f"<p>{_e(detail[0].upper() + detail[1:])}.</p>"
    return f'<p><span class="{state.lower()}">{state}</span>: {_e(detail)}</p>'


def validity_section(device: DeviceAB) -> list[str]:
    """Per session its verdict, reasons, warm-up and conditions (none from an old runtime)."""
    if not device.validity:
        return []
    name = device_name(device)
    unchecked = unchecked_line(device)
    return [
        f'<h3 id="validity-{slug(name)}">Validity on {_e(name)}</h3>',
        f"<p>{_e(validity_summary(device))}</p>",
        *(f"<p>{_e(line)}</p>" for line in model_validity_lines(device)),
        html_table(validity_rows(device), f"validity-table-{slug(name)}"),
        f'<p class="muted">{_e(VALIDITY_NOTE)}</p>',
        *([f'<p class="muted">{_e(unchecked)}</p>'] if unchecked else []),
    ]


def ops_section(device: DeviceAB) -> list[str]:
    """Per variant, its op types against the base's (``--ops``), or why there are none."""
    base = device.models[0].name
    checks = "".join(f"<li>{_e(c)}</li>" for c in ops_reconciliation(device))
    out = ["<h3>Per-operator profiles, ms per run</h3>", f"<ul>{checks}</ul>"] if checks else []
    for diff in device.op_diffs:
        key = slug(f"{device_name(device)}-{diff.variant}")
        heading = ops_heading(diff, base)
        out.append(f'<h3 id="ops-{key}">{_e(heading[0].upper() + heading[1:])}</h3>')
        if diff.rows:
            out.append(html_table(ops_rows(diff, base), f"ops-table-{key}"))
    return out


def render(report: ABReport, plots: Sequence[Plot] = ()) -> str:
    title = f"A/B: {report.base} against {', '.join(report.variants)}"
    body = [
        f"<h1>{_e(title)}</h1>",
        summary(report),
        f'<p class="muted">{_e(method_text(report))}</p>',
    ]
    by_title = {p.title: p for p in plots}
    if "Speedup and its interval" in by_title:
        body.append(figure_html(by_title["Speedup and its interval"]))
    for device in report.devices:
        name = device_name(device)
        body += [
            f"<h2>{_e(name)}</h2>",
            f'<p class="muted">{_e(device_heading(device, report))}</p>',
        ]
        body += [html_table(model_rows(device)), html_table(comparison_rows(device))]
        body += [f"<p>{_e(line)}</p>" for line in detectable_note(device)]
        body.append(f"<p>{_e(front_line(device))}</p>")
        body += validity_section(device) + ops_section(device)
        body += [figure_html(p) for p in plots if p.title.endswith(f" on {name}")]
    if report.pooled:
        body += ["<h2>Pooled over devices</h2>", html_table(pooled_rows(report))]
    if report.gates:
        body += ["<h2>Gates</h2>", html_table(gate_rows(report))]
    if report.failures:
        items = "".join(
            f"<li>{_e(f.target)}: {_e(f.type)}: {_e(f.message)}</li>" for f in report.failures
        )
        body += ["<h2>Failed devices</h2>", f"<ul>{items}</ul>"]
    body.append(
        f'<p class="muted">Schema {_e(report.schema)}, created {_e(report.created_at)}.</p>'
    )
    return page(title, body)
