"""Human views of a sweep (the JSON is the data): the rows of its tables, the Markdown
report built from them (the HTML one is :mod:`.report_html`), and one-line events."""

from __future__ import annotations

from edgeship.core.views import Rows, md_table
from edgeship.models.estimate import Interval, share_text
from edgeship.sweep._report import Cell, CellResult, SweepReport, VariantRecord

__all__ = [
    "SPEEDUP_NOTE",
    "across_notes",
    "across_rows",
    "describe",
    "event_line",
    "speedup_rows",
    "summary",
    "to_markdown",
    "variant_rows",
]


def to_markdown(report: SweepReport) -> str:
    lines = [
        f"# Sweep of {report.model}: {len(report.variants)} variants × {len(report.boards)} boards",
        "",
        summary(report),
        "",
        "## Variants",
        "",
        md_table(variant_rows(report)),
        "",
        "## Speedup on each board",
        "",
        SPEEDUP_NOTE,
        "",
        md_table(speedup_rows(report)),
        "",
        "## Across boards",
        "",
    ]
    lines += [md_table(across_rows(report)), ""] if report.across.points else []
    lines += across_notes(report)
    failed = report.failed()
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [f"- {c.variant} @ {c.board}: {_error(c)}" for c in failed]
    return "\n".join(lines) + "\n"


SPEEDUP_NOTE = (
    "Base median latency over the variant's, with its 95 % interval; "
    "★: on that board's Pareto front."
)
"""What the speedup matrix shows, said under its heading in every view."""


def summary(report: SweepReport) -> str:
    """How many cells are done, what ran them, and this run's share of the work."""
    n_done = sum(c.ok for c in report.cells)
    return (
        f"{len(report.cells)} cells: {n_done} done, {len(report.cells) - n_done} failed "
        f"({report.executor}; this run measured {report.run.measured}, reused "
        f"{report.run.cells_reused}, made {report.run.compressed} variants, reused "
        f"{report.run.variants_reused}, in {report.run.wall_s:.1f} s)."
    )


def variant_rows(report: SweepReport) -> Rows:
    headers = ["variant", "method", "size KB", "params", "sparsity", "accuracy vs labels (host)",
               "made in", "error"]  # fmt: skip
    return headers, [_variant_row(v) for v in report.variants]


def _variant_row(v: VariantRecord) -> list[str]:
    if not v.ok:
        return [v.name, v.method, "", "", "", "", f"{v.compress_s:.1f} s", _error_of(v)]
    return [
        v.name,
        v.method,
        f"{v.size_bytes / 1024:.1f}",
        f"{v.parameters:,}",
        f"{v.sparsity:.1%}",
        _share(v.accuracy, v.samples, v.accuracy_ci),
        f"{v.compress_s:.1f} s",
        "",
    ]


def speedup_rows(report: SweepReport) -> Rows:
    """Per variant its speedup on each board (a column per board), then the base's p50."""
    fronts = {f.board: set(f.front) for f in report.fronts}
    rows = [
        [v.name]
        + [_cell_text(c, fronts[c.board]) for c in (report.cell(v.name, b) for b in report.boards)]
        for v in report.variants
    ]
    base_row = [
        "-" if f.base_p50_ms is None else f"p50 {f.base_p50_ms:.4f} ms" for f in report.fronts
    ]
    return ["variant", *report.boards], [*rows, ["base", *base_row]]


def across_rows(report: SweepReport) -> Rows:
    """Per variant measured on every board: its relative figures across them."""
    across = report.across
    headers = ["variant", "boards", "speedup (geo-mean)", "range", "size KB", "memory ratio",
               "accuracy drop pp", "front"]  # fmt: skip
    rows = [
        [
            p.variant,
            str(p.boards),
            f"{p.speedup_geomean:.2f}×",
            f"{p.speedup_min:.2f}–{p.speedup_max:.2f}",
            f"{p.size_bytes / 1024:.1f}",
            _num(p.memory_ratio_geomean, ".2f"),
            _num(p.accuracy_drop_pp_mean, "+.2f"),
            "★" if p.variant in across.front else "",
        ]
        for p in across.points
    ]
    return headers, rows


def across_notes(report: SweepReport) -> list[str]:
    """The front across boards, or why there is none; the variants left out."""
    across = report.across
    if not across.points:
        lines = ["No variant was measured on every board."]
    else:
        lines = [
            f"Front across boards ({', '.join(across.objectives)}): {', '.join(across.front)}."
        ]
    if across.excluded:
        lines.append(f"Not on every board, left out: {', '.join(across.excluded)}.")
    return lines


def _cell_text(cell: Cell, front: set[str]) -> str:
    if cell.result is None:
        return f"failed: {cell.error.type if cell.error else '?'}"
    r = cell.result
    star = " ★" if cell.variant in front else ""
    return f"{r.speedup:.2f}× ({r.speedup_ci.low:.2f}–{r.speedup_ci.high:.2f}){star}"


def event_line(cell: Cell) -> str:
    """One cell, as a progress line: ``int8 @ pi-3: 1.52× faster, p50 0.41 ms, ...``."""
    if cell.result is None:
        return f"{cell.variant} @ {cell.board}: failed: {_error(cell)}"
    return f"{cell.variant} @ {cell.board}: {describe(cell.result)}"


def describe(r: CellResult) -> str:
    parts = [f"{r.speedup:.2f}× ({r.verdict})", f"p50 {r.p50_ms:.4f} ms"]
    if r.peak_rss_mb is not None:
        parts.append(f"peak {r.peak_rss_mb:.1f} MiB")
    if r.accuracy is not None:
        parts.append(f"accuracy vs labels {_share(r.accuracy, r.samples, r.accuracy_ci)}")
    elif r.top1_agreement is not None:
        agreement = _share(r.top1_agreement, r.samples, r.top1_agreement_ci)
        parts.append(f"top-1 agreement vs base {agreement}")
    return ", ".join(parts)


def _error(cell: Cell) -> str:
    return "?" if cell.error is None else f"{cell.error.type}: {cell.error.message}"


def _error_of(v: VariantRecord) -> str:
    return "" if v.error is None else f"{v.error.type}: {v.error.message}"


def _share(v: float | None, n: int | None, ci: Interval | None) -> str:
    """``99.2 % [98.0, 99.7] n=540``; a record written before intervals: the bare share."""
    return "-" if v is None else share_text(v, n, ci)


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else f"{v:{fmt}}"
