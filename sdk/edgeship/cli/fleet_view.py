"""A fleet's results as one table that grows as devices finish.

One row per device, printed (and flushed) the moment the device finishes: its name, ok or
failed, seconds, and its result when that is one line, or its error; a result of several
lines (a table) follows the row, indented. On a terminal, a status line on stderr
(``12/64 done, 16 running, 36 queued``) is redrawn under the table after every row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from edgeship.core.progress import StatusLine, line_on
from edgeship.targets.fleet import DeviceResult, FleetProgress

__all__ = ["COUNT", "INDENT", "FleetTable"]

INDENT = "    "
COUNT = "fleet"
"""The status line's key of the fleet's count (shown without a prefix)."""


class FleetTable:
    """Prints rows to ``out`` (stdout) and the count to ``status`` (stderr) when that is a
    terminal: as an entry of the status line open there (the command's), else of its own.
    ``render`` turns a device's value into text."""

    def __init__(
        self,
        names: Sequence[str],
        render: Callable[[Any], str],
        out: TextIO | None = None,
        status: TextIO | None = None,
    ) -> None:
        self.render = render
        self.out = out or sys.stdout
        stream = status or sys.stderr
        self.line = line_on(stream) or StatusLine(stream)
        self.width = max([len("device"), *(len(n) for n in names)])
        self.header_printed = False

    def row(self, result: DeviceResult[Any], progress: FleetProgress) -> None:
        """Print one finished device (the header first, once)."""
        lines = []
        if not self.header_printed:
            lines.append(f"{'device'.ljust(self.width)}  status  {'time':>7}  result")
            self.header_printed = True
        if result.error is not None:
            state, body = "failed", [_one_line(f"{type(result.error).__name__}: {result.error}")]
        else:
            state, body = "ok", self.render(result.value).splitlines() or [""]
        inline, below = (body[0], []) if len(body) == 1 else ("", body)
        head = f"{result.target.ljust(self.width)}  {state:<6}  {result.elapsed_s:>5.1f} s  "
        lines.append((head + inline).rstrip())
        lines += [(INDENT + line).rstrip() for line in below]
        self.line.print_above(lines, self.out)
        self._count(progress, f", {progress.running} running, {progress.queued} queued")

    def progress_only(self, result: DeviceResult[Any], progress: FleetProgress) -> None:
        """With ``--json`` (stdout holds one document): the count alone."""
        self._count(progress, "")

    def _count(self, progress: FleetProgress, more: str) -> None:
        """``12/64 done`` (and ``more``) on the line; gone once every device is done."""
        if progress.done < progress.total:
            self.line.show(COUNT, f"{progress.done}/{progress.total} done{more}", label="")
        else:
            self.line.clear(COUNT)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
