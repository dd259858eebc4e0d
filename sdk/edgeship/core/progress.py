"""Progress on stderr: one line, redrawn in place, whether one device works or a fleet.

:class:`TransferProgress` is the upload bar: each device's upload reports (bytes sent,
bytes in all) from its own thread; with one device the line is its bar, with several it
sums them up, so concurrent uploads do not overwrite each other's bars on the same line.

:class:`StatusLine` is the line of every other long operation (profiling, A/B sessions,
tuning trials, training epochs, recipe variants): each worker (a device) sets its own
entry, the line shows them all, and an entry that is waiting on the device ticks its
elapsed seconds, since the device reports nothing until it is done. The library only
calls callbacks; the CLI owns the line, live on a terminal and silent otherwise.

A terminal has one such line: while a :class:`StatusLine` is open (in its ``with`` block)
on a stream, it is that stream's line (:func:`line_on`), and the upload bar, a fleet's
``12/64 done`` and error lines go through it (as entries, or printed above it) rather than
drawing over it.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TextIO

__all__ = [
    "CLEAR_LINE",
    "UPLOAD",
    "WIDTH",
    "Progress",
    "StatusLine",
    "TransferProgress",
    "bar",
    "line_on",
    "transfer_reporters",
]

Progress = Callable[[int, int], None]  # (bytes sent, bytes in all), per device
WIDTH = 30

CLEAR_LINE = "\r\033[K"
"""Back to the start of the line and erase it (ANSI), as a terminal understands it."""


def bar(done: float, total: float, width: int = WIDTH) -> str:
    """``[#######.......................]``: ``done`` of ``total`` (an empty total is full)."""
    filled = min(int(width * done / total), width) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}]"


class TransferProgress:
    """The shared line of ``labels``' uploads; :meth:`reporter` gives each its callback.

    With a ``line`` (the terminal's open status line) the uploads are its ``upload`` entry,
    beside the other entries; without, the bar draws the line itself.
    """

    def __init__(
        self, labels: Sequence[str], stream: TextIO | None = None, line: StatusLine | None = None
    ) -> None:
        self.labels = list(labels)
        self.stream = stream or sys.stderr
        self.line = line
        self._state: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def reporter(self, label: str) -> Progress:
        def report(done: int, total: int) -> None:
            with self._lock:
                self._state[label] = (done, total)
                self._draw(label, done >= total)

        return report

    def _draw(self, label: str, finished: bool) -> None:
        done = sum(d for d, _ in self._state.values())
        total = sum(t for _, t in self._state.values())
        text = f"{bar(done, total)} {done / 2**20:.1f}/{total / 2**20:.1f} MiB"
        if len(self.labels) == 1:
            text = f"{label}: {text}"
        else:
            complete = sum(d >= t for d, t in self._state.values())
            text = (
                f"upload to {len(self._state)} of {len(self.labels)} devices: {text}, "
                f"{complete} complete"
            )
            finished = complete == len(self._state)  # a device starting later: a new line
        if self.line is not None:
            self.line.show(UPLOAD, text, label="")
            if finished:
                self.line.done(UPLOAD)
            return
        self.stream.write(CLEAR_LINE + text + ("\n" if finished else ""))
        self.stream.flush()


UPLOAD = "upload"
"""The upload bar's key on a status line (its text names the devices)."""


def transfer_reporters(labels: Sequence[str]) -> dict[str, Progress]:
    """A callback per label drawing the shared line, or none when stderr is no terminal;
    into the open status line when there is one."""
    if not sys.stderr.isatty():
        return {}
    line = TransferProgress(labels, sys.stderr, line_on(sys.stderr))
    return {label: line.reporter(label) for label in labels}


class StatusLine:
    """One status line on ``stream`` (stderr) that threads update in place.

    Each key (a device's name; ``""`` for no prefix) holds one entry; the line shows every
    entry, ``key: text``, cut to the terminal's width so that it stays one line. A
    ``ticking`` entry shows the seconds since it was set, redrawn every ``tick_s`` by a
    thread of its own. When the last entry is :meth:`done`, the line is ended with a
    newline and stays as a record, as the transfer bar does. Not ``live`` (default: when
    ``stream`` is no terminal), it writes nothing at all. Use it as a context manager, or
    :meth:`close` it: that stops the ticking and ends a line left open.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        tick_s: float = 1.0,
        width: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.tick_s = tick_s
        self.width = width
        self.clock = clock
        self._entries: dict[str, tuple[str, str, float | None]] = {}  # key: label, text, set at
        self._open = False  # a line is on the screen and not ended yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def show(self, key: str, text: str, *, ticking: bool = False, label: str | None = None) -> None:
        """Set ``key``'s entry to ``text`` (with its elapsed seconds when ``ticking``),
        shown after ``label: `` (default: the key; ``""``: none)."""
        if not self.live:
            return
        with self._lock:
            shown = key if label is None else label
            self._entries[key] = (shown, text, self.clock() if ticking else None)
            self._draw()
            if ticking and self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="status-line", daemon=True)
                self._ticker.start()

    def done(self, key: str) -> None:
        """Drop ``key``'s entry; the last one dropped ends the line, leaving it shown."""
        self._drop(key, erase=False)

    def clear(self, key: str) -> None:
        """Drop ``key``'s entry and leave no record of it: the last one dropped erases the
        line (a running count, unlike a finished bar, is no record)."""
        self._drop(key, erase=True)

    def _drop(self, key: str, erase: bool) -> None:
        if not self.live:
            return
        with self._lock:
            if self._entries.pop(key, None) is None:
                return
            if self._entries:
                self._draw()
            elif not erase:
                self._end()
            elif self._open:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
                self._open = False

    def print_above(self, lines: Sequence[str], out: TextIO) -> None:
        """Print ``lines`` to ``out`` (stdout, or this stream) on lines of their own, the
        status line erased first and drawn again under them."""
        with self._lock:
            if self.live and self._open:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
                self._open = False
            for line in lines:
                print(line, file=out, flush=True)
            if self.live and self._entries:
                self._draw()

    def refresh(self) -> None:
        """Redraw, so ticking entries show their seconds now (the ticker calls it)."""
        with self._lock:
            if self._entries:
                self._draw()

    def close(self) -> None:
        """Stop ticking and end a line left open (an entry never done: a failure)."""
        if _OPEN.get(id(self.stream)) is self:
            del _OPEN[id(self.stream)]
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._entries.clear()
            self._end()

    def __enter__(self) -> StatusLine:
        if self.live:
            _OPEN[id(self.stream)] = self
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.refresh()

    def _draw(self) -> None:
        now = self.clock()
        parts = []
        for label, text, since in self._entries.values():
            shown = text if since is None else f"{text} · {now - since:.0f} s"
            parts.append(f"{label}: {shown}" if label else shown)
        line = " | ".join(parts)
        # a line longer than the terminal wraps, and \r then redraws only its last row
        width = self.width or shutil.get_terminal_size().columns
        if len(line) >= width:
            line = line[: max(width - 2, 0)] + "…"
        self.stream.write(f"{CLEAR_LINE}{line}")
        self.stream.flush()
        self._open = True

    def _end(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


_OPEN: dict[int, StatusLine] = {}
"""The live status line open on each stream (by its ``id``), from its ``with`` to its close."""


def line_on(stream: TextIO) -> StatusLine | None:
    """The live status line open on ``stream``, if any: what else writes there goes through it."""
    return _OPEN.get(id(stream))
