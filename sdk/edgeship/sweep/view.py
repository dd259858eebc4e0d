"""Human views of a sweep (the JSON is the data): the Markdown report and one-line events."""

from __future__ import annotations

from edgeship.models.estimate import Interval, share_text
from edgeship.sweep._report import Cell, CellResult, SweepReport, VariantRecord

__all__ = ["describe", "event_line", "to_markdown"]


def to_markdown(report: SweepReport) -> str:
    n_done = sum(c.ok for c in report.cells)
    lines = [
        f"# Sweep of {report.model}: {len(report.variants)} variants × {len(report.boards)} boards",
        "",
        f"{len(report.cells)} cells: {n_done} done, {len(report.cells) - n_done} failed "
        f"({report.executor}; this run measured {report.run.measured}, reused "
        f"{report.run.cells_reused}, made {report.run.compressed} variants, reused "
        f"{report.run.variants_reused}, in {report.run.wall_s:.1f} s).",
        "",
        "## Variants",
        "",
        "| variant | method | size KB | params | sparsity | accuracy vs labels (host) | made in "
        "| error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_variant_row(v) for v in report.variants]
    lines += [
        "",
        "## Speedup on each board",
        "",
        "Base median latency over the variant's, with its 95 % interval; "
        "★: on that board's Pareto front.",
        "",
        "| variant | " + " | ".join(report.boards) + " |",
        "|---|" + "---|" * len(report.boards),
    ]
    fronts = {f.board: set(f.front) for f in report.fronts}
    for v in report.variants:
        cells = [report.cell(v.name, b) for b in report.boards]
        lines.append(
            f"| {v.name} | " + " | ".join(_cell_text(c, fronts[c.board]) for c in cells) + " |"
        )
    base_row = [
        "-" if f.base_p50_ms is None else f"p50 {f.base_p50_ms:.4f} ms" for f in report.fronts
    ]
    lines.append("| base | " + " | ".join(base_row) + " |")
    lines += ["", "## Across boards", ""]
    across = report.across
    if not across.points:
        lines.append("No variant was measured on every board.")
    else:
        lines += [
            "| variant | boards | speedup (geo-mean) | range | size KB | memory ratio "
            "| accuracy drop pp | front |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in across.points:
            lines.append(
                f"| {p.variant} | {p.boards} | {p.speedup_geomean:.2f}× | "
                f"{p.speedup_min:.2f}–{p.speedup_max:.2f} | {p.size_bytes / 1024:.1f} | "
                f"{_num(p.memory_ratio_geomean, '.2f')} | {_num(p.accuracy_drop_pp_mean, '+.2f')}"
                f" | {'★' if p.variant in across.front else ''} |"
            )
        lines.append("")
        lines.append(
            f"Front across boards ({', '.join(across.objectives)}): {', '.join(across.front)}."
        )
    if across.excluded:
        lines.append(f"Not on every board, left out: {', '.join(across.excluded)}.")
    failed = report.failed()
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [f"- {c.variant} @ {c.board}: {_error(c)}" for c in failed]
    return "\n".join(lines) + "\n"


def _variant_row(v: VariantRecord) -> str:
    if not v.ok:
        return f"| {v.name} | {v.method} | | | | | {v.compress_s:.1f} s | {_error_of(v)} |"
    return (
        f"| {v.name} | {v.method} | {v.size_bytes / 1024:.1f} | {v.parameters:,} | "
        f"{v.sparsity:.1%} | {_share(v.accuracy, v.samples, v.accuracy_ci)} | "
        f"{v.compress_s:.1f} s | |"
    )


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
