"""Write an A/B report to a directory: JSON (the data), Markdown and HTML (views)."""

from __future__ import annotations

from pathlib import Path

from edgeship.ab import _report_html as report_html
from edgeship.ab import _report_md as report_md
from edgeship.ab._plots import all_plots
from edgeship.ab.result import ABReport
from edgeship.core.views import ReportFiles, write_report_files

__all__ = ["ReportFiles", "write_report"]


def write_report(report: ABReport, directory: Path) -> ReportFiles:
    """``ab.json``, ``ab.md`` (figures as ``figures/*.png``) and a self-contained
    ``ab.html`` under ``directory`` (created if needed)."""
    return write_report_files(
        directory,
        "ab",
        report.to_json(),
        all_plots(report),
        lambda links: report_md.render(report, links),
        lambda plots: report_html.render(report, plots),
    )
