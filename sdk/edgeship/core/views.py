"""What every report's views share: rows as Markdown and HTML tables, figures as PNG
bytes, and the one self-contained HTML page around them (A/B, profile and sweep).

A report's own view modules build their rows and figures once, from the report's typed
fields; these functions only lay them out, so the table, the Markdown and the HTML show
the same figures. The page fetches nothing: inline CSS, figures as base64 PNG. One inline
script only counts, once the page has loaded, the figures the browser decoded into
``<body data-figures-loaded>`` and the tables it laid out with a height into ``<body
data-tables-shown>``, so a headless browser can confirm that the page renders.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot), so nothing
global is touched and no display is needed; matplotlib (``pip install 'edgeship[ab]'``)
is imported only when a figure is drawn.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.core.errors import UsageError
from edgeship.core.extras import import_optional

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COLORS",
    "MARKED",
    "Plot",
    "ReportFiles",
    "Rows",
    "check_columns",
    "escape",
    "figure_html",
    "html_table",
    "md_table",
    "new_figure",
    "page",
    "png",
    "slug",
    "text_table",
    "write_report_files",
]

Rows = tuple[list[str], list[list[str]]]
"""A table: its column headers (every one named), then its rows of formatted cells."""

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_DPI = 100

MARKED = frozenset({"stable", "unstable", "faster", "slower"})
"""Cell values coloured in HTML (see the CSS): a verdict or a change, as the text also says."""

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


@dataclass(frozen=True)
class Plot:
    """One figure: a file-safe ``name``, a ``title`` and its PNG bytes."""

    name: str
    title: str
    png: bytes


def slug(text: str) -> str:
    """``text`` safe as a file name and an HTML id: other characters become ``-``."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def check_columns(headers: Sequence[str]) -> None:
    """Every column of a table has a name (a blank header is a mistake of the view)."""
    unnamed = [i for i, h in enumerate(headers) if not h.strip()]
    if unnamed:
        raise ValueError(f"table columns {unnamed} have no name: {list(headers)}")


def text_table(rows: Rows, text_columns: Collection[str] | None = None) -> str:
    """``rows`` padded to width for a terminal: the ``text_columns`` aligned left, the
    numbers right (None: the first column left, the rest right)."""
    headers, body = rows
    check_columns(headers)
    left = set(headers[:1]) if text_columns is None else set(text_columns)
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if h in left else c.rjust(w)
            for h, c, w in zip(headers, cells, widths, strict=True)
        ]
        return "  ".join(padded).rstrip()

    heading = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    return "\n".join([heading, "  ".join("-" * w for w in widths), *map(line, body)])


def md_table(rows: Rows) -> str:
    headers, body = rows
    check_columns(headers)
    esc = [[c.replace("|", "\\|") for c in row] for row in [headers, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines)


def html_table(rows: Rows, table_id: str = "", text_columns: Collection[str] = ()) -> str:
    """``rows`` as a ``<table>``: the ``text_columns`` aligned left, the numbers right."""
    headers, body = rows
    check_columns(headers)
    align = ["t" if h in text_columns else "" for h in headers]
    head = "".join(f"<th{_cls(a)}>{escape(h)}</th>" for h, a in zip(headers, align, strict=True))
    lines = [f'<table id="{escape(table_id)}">' if table_id else "<table>", f"<tr>{head}</tr>"]
    for row in body:
        cells = "".join(
            f"<td{_cls(a, c if c in MARKED else '')}>{escape(c)}</td>"
            for c, a in zip(row, align, strict=True)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _cls(*names: str) -> str:
    joined = " ".join(n for n in names if n)
    return f' class="{joined}"' if joined else ""


def figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="{escape(plot.name)}"><img alt="{escape(plot.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(plot.title)}</figcaption>'
        "</figure>"
    )


def page(title: str, body: Sequence[str]) -> str:
    """One self-contained HTML page: ``title`` and the ``body``'s HTML, in order."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def new_figure(width: float, height: float, purpose: str) -> Figure:
    """An empty figure of ``width`` × ``height`` inches; ``purpose`` names what needs
    matplotlib when it is not installed."""
    figure = import_optional("matplotlib.figure", purpose)
    return figure.Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


@dataclass(frozen=True)
class ReportFiles:
    """What a report directory holds: the data, its two views and their figures."""

    json: Path
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def write_report_files(
    directory: Path,
    stem: str,
    data: str,
    plots: Sequence[Plot],
    markdown: Callable[[Mapping[str, str]], str],
    html_page: Callable[[Sequence[Plot]], str],
) -> ReportFiles:
    """``STEM.json`` (``data``), ``STEM.md`` (``markdown`` given each figure's file by
    title, ``figures/NAME.png``) and a self-contained ``STEM.html`` under ``directory``
    (created if needed; a directory that cannot be made is the user's mistake)."""
    directory = Path(directory)
    try:
        (directory / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report {directory}: cannot create it ({exc.strerror})") from exc
    figures = []
    for plot in plots:
        path = directory / "figures" / f"{plot.name}.png"
        path.write_bytes(plot.png)
        figures.append(path)
    json_path = directory / f"{stem}.json"
    json_path.write_text(data)
    md_path = directory / f"{stem}.md"
    md_path.write_text(markdown({p.title: f"figures/{p.name}.png" for p in plots}))
    html_path = directory / f"{stem}.html"
    html_path.write_text(html_page(plots))
    return ReportFiles(json_path, md_path, html_path, tuple(figures))
