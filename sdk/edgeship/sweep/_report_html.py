"""The sweep's report as one self-contained HTML page (``sweep.html``): the tables of
:mod:`.view` and a Pareto plot per board and across boards, figures as base64 PNG.

Every figure is drawn from the report's typed fields, the ones its tables and JSON show:
on a board, each done cell's ``p50_ms`` against its ``size_bytes`` (marker area ~ its
``peak_rss_mb``, colour its on-device ``accuracy`` when every point has one), the base at
the board's ``base_p50_ms``, the front from ``fronts``; across boards, each variant's
``speedup_geomean`` against its size, the front from ``across.front``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from edgeship.core.views import (
    Plot,
    escape,
    figure_html,
    html_table,
    new_figure,
    page,
    png,
    slug,
)
from edgeship.sweep._fronts import BASE
from edgeship.sweep._report import BoardFront, SweepReport
from edgeship.sweep.view import (
    SPEEDUP_NOTE,
    across_notes,
    across_rows,
    speedup_rows,
    summary,
    variant_rows,
)

__all__ = ["TEXT_COLUMNS", "across_plot", "all_plots", "board_plot", "render"]

TEXT_COLUMNS = frozenset(["variant", "method", "error", "front"])
"""Columns aligned left; the others hold numbers."""

_PURPOSE = "writing a sweep's report"

_Point = tuple[str, float, float, float | None, float | None]
"""A point of a plot: name, x, y, peak RSS MiB, accuracy (a fraction)."""


def render(report: SweepReport, plots: Sequence[Plot] = ()) -> str:
    title = (
        f"Sweep of {report.model}: {len(report.variants)} variants × {len(report.boards)} boards"
    )
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(summary(report))}</p>',
        "<h2>Variants</h2>",
        html_table(variant_rows(report), "variants", TEXT_COLUMNS),
        "<h2>Speedup on each board</h2>",
        f'<p class="muted">{escape(SPEEDUP_NOTE)}</p>',
        html_table(speedup_rows(report), "speedups", TEXT_COLUMNS),
        *(figure_html(p) for p in plots if p.name.startswith("pareto-board-")),
        "<h2>Across boards</h2>",
    ]
    if report.across.points:
        body.append(html_table(across_rows(report), "across", TEXT_COLUMNS))
    body += [f"<p>{escape(line)}</p>" for line in across_notes(report)]
    body += [figure_html(p) for p in plots if p.name == "pareto-across"]
    failed = report.failed()
    if failed:
        items = "".join(
            f"<li>{escape(c.variant)} @ {escape(c.board)}: "
            f"{escape(c.error.type if c.error else '?')}: "
            f"{escape(c.error.message if c.error else '')}</li>"
            for c in failed
        )
        body += ["<h2>Failed cells</h2>", f"<ul>{items}</ul>"]
    body.append(
        f'<p class="muted">Schema {escape(report.schema)}, created {escape(report.created_at)}.</p>'
    )
    return page(title, body)


def board_plot(report: SweepReport, front: BoardFront) -> Plot | None:
    """Latency against size on one board (None: no cell done there)."""
    results = [
        (c.variant, c.result)
        for c in report.cells
        if c.board == front.board and c.result is not None
    ]
    if not results or front.base_p50_ms is None:
        return None
    first = results[0][1]
    base_rss = [r.base_peak_rss_mb for _, r in results if r.base_peak_rss_mb is not None]
    base: _Point = (
        BASE,
        front.base_p50_ms,
        first.base_size_bytes / 1024,
        statistics.median(base_rss) if base_rss else None,
        first.base_accuracy,
    )
    points = [base] + [
        (name, r.p50_ms, r.size_bytes / 1024, r.peak_rss_mb, r.accuracy) for name, r in results
    ]
    title = f"{front.board}: Pareto front over {', '.join(front.objectives)}"
    fig = _scatter(points, set(front.front), title, "median latency (ms)")
    return Plot(f"pareto-board-{slug(front.board)}", f"Pareto front on {front.board}", fig)


def across_plot(report: SweepReport) -> Plot | None:
    """Speedup (geometric mean over the boards) against size, every board at once."""
    across = report.across
    if not across.points:
        return None
    base_size = next((c.result.base_size_bytes for c in report.cells if c.result), None)
    points: list[_Point] = [
        (p.variant, p.speedup_geomean, p.size_bytes / 1024, None, None) for p in across.points
    ]
    if base_size is not None:
        points.insert(0, (BASE, 1.0, base_size / 1024, None, None))
    title = f"Across boards: Pareto front over {', '.join(across.objectives)}"
    fig = _scatter(points, set(across.front), title, "speedup over the base (geometric mean)")
    return Plot("pareto-across", "Pareto front across boards", fig)


def _scatter(points: Sequence[_Point], front: set[str], title: str, xlabel: str) -> bytes:
    """The points (front green, others grey); colour by accuracy when every point has
    one, marker area by peak RSS when every point has it."""
    fig = new_figure(7, 4.2, _PURPOSE)
    ax = fig.add_subplot()
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    memory = [p[3] for p in points]
    sizes: list[float] = [60.0] * len(points)
    if all(m is not None for m in memory):
        top = max(m for m in memory if m is not None) or 1.0
        sizes = [40 + 260 * ((m or 0.0) / top) ** 2 for m in memory]
    accuracy = [p[4] for p in points]
    edges = ["#2ca02c" if p[0] in front else "0.5" for p in points]
    style: dict[str, Any] = {"s": sizes, "edgecolors": edges, "linewidths": 2.0, "alpha": 0.85}
    if all(a is not None for a in accuracy):
        shown = ax.scatter(xs, ys, c=[100 * (a or 0.0) for a in accuracy], cmap="viridis", **style)
        fig.colorbar(shown, ax=ax, label="accuracy vs labels, on the board (%)")
    else:
        ax.scatter(xs, ys, c=["#2ca02c" if p[0] in front else "0.7" for p in points], **style)
    for name, x, y, _, _ in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize="small")
    ax.margins(0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("size on disk (KiB)")
    ax.set_title(f"{title} (green: on the front)", fontsize="medium")
    ax.grid(alpha=0.3)
    return png(fig)


def all_plots(report: SweepReport) -> list[Plot]:
    """A Pareto plot per board with results, then across boards."""
    plots = [board_plot(report, front) for front in report.fronts]
    plots.append(across_plot(report))
    return [p for p in plots if p is not None]
