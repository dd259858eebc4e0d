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

from ..fleet import DeviceResult, FleetProgress
from .output import CLEAR_LINE

INDENT = "    "


class FleetTable:
    """Prints rows to ``out`` (stdout) and the status line to ``status`` (stderr) when
    that is a terminal. ``render`` turns a device's value into text."""

    def __init__(
        self,
        names: Sequence[str],
        render: Callable[[Any], str],
        out: TextIO | None = None,
        status: TextIO | None = None,
    ) -> None:
        self.render = render
        self.out = out or sys.stdout
        self.status = status or sys.stderr
        self.live = self.status.isatty()
        self.width = max([len("device"), *(len(n) for n in names)])
        self.header_printed = False

    def row(self, result: DeviceResult[Any], progress: FleetProgress) -> None:
        """Print one finished device (the header first, once)."""
        self._clear_status()
        if not self.header_printed:
            self._print(f"{'device'.ljust(self.width)}  status  {'time':>7}  result")
            self.header_printed = True
        if result.error is not None:
            state, lines = "failed", [_one_line(f"{type(result.error).__name__}: {result.error}")]
        else:
            state, lines = "ok", self.render(result.value).splitlines() or [""]
        inline, below = (lines[0], []) if len(lines) == 1 else ("", lines)
        head = f"{result.target.ljust(self.width)}  {state:<6}  {result.elapsed_s:>5.1f} s  "
        self._print((head + inline).rstrip())
        for line in below:
            self._print((INDENT + line).rstrip())
        if self.live and progress.done < progress.total:
            self.status.write(
                f"{progress.done}/{progress.total} done, {progress.running} running, "
                f"{progress.queued} queued"
            )
            self.status.flush()

    def progress_only(self, result: DeviceResult[Any], progress: FleetProgress) -> None:
        """With ``--json`` (stdout holds one document): the status line alone."""
        if self.live:
            self._clear_status()
            if progress.done < progress.total:
                self.status.write(f"{progress.done}/{progress.total} done")
                self.status.flush()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _clear_status(self) -> None:
        if self.live:
            self.status.write(CLEAR_LINE)
            self.status.flush()


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
