"""The A/B report as one self-contained HTML page: inline CSS, figures as base64 PNG.

Nothing is fetched: no scripts, fonts or images from anywhere. One inline script only
counts, once the page has loaded, the figures the browser decoded into ``<body
data-figures-loaded>`` and the tables it laid out with a height into ``<body
data-tables-shown>``, so a headless browser can confirm that the page renders.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from edgeship.ab._plots import Plot, slug
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
    gate_rows,
    model_rows,
    model_validity_lines,
    ops_heading,
    ops_rows,
    pooled_rows,
    unchecked_line,
    validity_rows,
    validity_summary,
    verdict,
)

__all__ = ["figure", "html_table", "ops_section", "render", "summary", "validity_section"]

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th.t, td.t { text-align: left; }
th { background: #f4f4f4; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.muted { color: #666; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
td.unstable, td.slower { color: #c62828; } td.stable, td.faster { color: #1a7f37; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var ok = Array.prototype.filter.call(document.images, function (img) {
    return img.complete && img.naturalWidth > 0;
  });
  document.body.setAttribute("data-figures-loaded", String(ok.length));
  var shown = Array.prototype.filter.call(document.querySelectorAll("table"), function (t) {
    return t.getBoundingClientRect().height > 0 && t.rows.length > 0;
  });
  document.body.setAttribute("data-tables-shown", String(shown.length));
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_MARKED = frozenset({"stable", "unstable", "faster", "slower"})
"""Cell values coloured (see the CSS): a verdict or a change, as the text also says."""


def html_table(rows: Rows, table_id: str = "") -> str:
    headers, body = rows
    align = ["" if h not in TEXT_COLUMNS else "t" for h in headers]
    head = "".join(f"<th{_cls(a)}>{_e(h)}</th>" for h, a in zip(headers, align, strict=True))
    lines = [f'<table id="{_e(table_id)}">' if table_id else "<table>", f"<tr>{head}</tr>"]
    for row in body:
        cells = "".join(
            f"<td{_cls(a, c if c in _MARKED else '')}>{_e(c)}</td>"
            for c, a in zip(row, align, strict=True)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _cls(*names: str) -> str:
    joined = " ".join(n for n in names if n)
    return f' class="{joined}"' if joined else ""


def figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="{_e(plot.name)}"><img alt="{_e(plot.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{_e(plot.title)}</figcaption></figure>'
    )


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
    out = []
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
        body.append(figure(by_title["Speedup and its interval"]))
    for device in report.devices:
        name = device_name(device)
        body += [
            f"<h2>{_e(name)}</h2>",
            f'<p class="muted">{_e(device_heading(device, report))}</p>',
        ]
        body += [html_table(model_rows(device)), html_table(comparison_rows(device))]
        body += [f"<p>{_e(line)}</p>" for line in detectable_note(device)]
        body.append(f"<p>Pareto front: {_e(', '.join(device.pareto_front))}</p>")
        body += validity_section(device) + ops_section(device)
        body += [figure(p) for p in plots if p.title.endswith(f" on {name}")]
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
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )
