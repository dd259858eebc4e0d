"""Human views over reports (the JSON is the data; these are only views) and errors.

Memory columns are MiB (2**20 bytes), as are the reports' ``*_mb`` fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import EdgeshipError
from edgeship.core.progress import CLEAR_LINE, StatusLine, line_on
from edgeship.core.views import Rows, text_table

if TYPE_CHECKING:  # every command prints through here; only profile's tables read reports
    from edgeship_runtime.report import PolicyRecord, ProfileReport

__all__ = [
    "print_error",
    "print_json",
    "print_stderr",
    "profile_footer",
    "profile_heading",
    "profile_row",
    "profile_rows",
    "profile_table",
    "status_line",
    "table",
    "window_text",
]


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def status_line(as_json: bool) -> StatusLine:
    """The command's progress line on stderr: live on a terminal, silent with ``--json``
    (stderr may be read with stdout then) or into a pipe or a log."""
    return StatusLine(sys.stderr, live=not as_json and sys.stderr.isatty())


def print_stderr(line: str) -> None:
    """One line on stderr, on a line of its own: above the open status line, which is
    drawn again under it; on a terminal without one, a transfer progress bar that broke
    off (it ends its line only when done) is cleared first, not appended to."""
    status = line_on(sys.stderr)
    if status is not None:
        status.print_above([line], sys.stderr)
        return
    prefix = CLEAR_LINE if sys.stderr.isatty() else ""
    print(f"{prefix}{line}", file=sys.stderr)


def print_error(exc: EdgeshipError, as_json: bool) -> None:
    """One line on stderr; with ``--json`` also the error object on stdout."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    print_stderr(f"error: {' '.join(lines)}")
    if as_json:
        print_json({"error": {"type": type(exc).__name__, "message": str(exc)}})


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to width, the first aligned left; every column has a name."""
    return text_table((list(headers), [list(r) for r in rows]))


_PROFILE_HEADERS = (
    "model",
    "backend",
    "load ms",
    "first ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "mean±std of runs ms",
    "inf/s",
    "peak MiB",
)


def window_text(policy: PolicyRecord) -> str:
    """What a profile was asked to time: ``at least 1 s and 100 timed runs``."""
    if policy.min_seconds:
        return f"at least {policy.min_seconds:g} s and {policy.runs} timed runs"
    return f"{policy.runs} timed runs"


def profile_row(report: ProfileReport) -> list[str]:
    lat = report.latency_ms
    engines = report.backend.providers or report.backend.delegates or ["-"]
    return [
        report.model.path.rsplit("/", 1)[-1],
        f"{report.backend.name} ({','.join(e.replace('ExecutionProvider', '') for e in engines)})",
        f"{report.load_ms:.1f}",
        f"{report.first_inference_ms:.3f}",
        f"{lat.p50:.3f}",
        f"{lat.p90:.3f}",
        f"{lat.p99:.3f}",
        f"{lat.mean:.3f}±{lat.std:.3f}",
        f"{report.throughput_ips:,.0f}",
        f"{report.memory_mb.peak_rss:.1f}",
    ]


def profile_rows(reports: Sequence[ProfileReport]) -> Rows:
    """The profile table's rows, one per model (the terminal's and the HTML report's)."""
    return list(_PROFILE_HEADERS), [profile_row(r) for r in reports]


def profile_heading(reports: Sequence[ProfileReport]) -> str:
    """The device the models were profiled on, as its report describes it."""
    env = reports[0].environment
    target = (reports[0].target or {}).get("name", "?")
    head = (
        f"target {target}: {env.hostname} · {env.arch} · {env.cpu_model} · "
        f"{env.usable_cores}/{env.logical_cores} cores · {env.total_memory_mb / 1024:.1f} GiB"
        f" · Python {env.python}"
    )
    if env.temperature_c is not None:
        head += f" · {env.temperature_c:.1f} °C"
    return head


def profile_footer(reports: Sequence[ProfileReport]) -> str:
    """How the figures were measured (the counts each model really ran are on its
    validity line)."""
    policy = reports[0].policy
    warmup = f"at least {policy.warmup}" if policy.steady is not False else f"{policy.warmup}"
    return (
        f"each model: {window_text(policy)} after {warmup} warm-up runs (the counts each "
        f"really ran are on its validity line), batch {reports[0].batch_size}; peak RSS by "
        f"{reports[0].memory_mb.method}"
    )


def profile_table(reports: Sequence[ProfileReport]) -> str:
    body = table(*profile_rows(reports))
    return f"{profile_heading(reports)}\n{body}\n{profile_footer(reports)}"
