"""Write an A/B report to a directory: JSON (the data), Markdown and HTML (views)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeship.ab import _report_html as report_html
from edgeship.ab import _report_md as report_md
from edgeship.ab._plots import all_plots
from edgeship.ab.result import ABReport
from edgeship.core.errors import UsageError

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def write_report(report: ABReport, directory: Path) -> ReportFiles:
    """``ab.json``, ``ab.md`` (figures as ``figures/*.png``) and a self-contained
    ``ab.html`` under ``directory`` (created if needed)."""
    directory = Path(directory)
    try:
        (directory / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report {directory}: cannot create it ({exc.strerror})") from exc
    plots = all_plots(report)
    figures = []
    for plot in plots:
        path = directory / "figures" / f"{plot.name}.png"
        path.write_bytes(plot.png)
        figures.append(path)
    json_path = directory / "ab.json"
    json_path.write_text(report.to_json())
    md_path = directory / "ab.md"
    links = {p.title: f"figures/{p.name}.png" for p in plots}
    md_path.write_text(report_md.render(report, links))
    html_path = directory / "ab.html"
    html_path.write_text(report_html.render(report, plots))
    return ReportFiles(json_path, md_path, html_path, tuple(figures))
