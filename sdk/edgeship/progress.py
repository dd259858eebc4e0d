"""Transfer progress on stderr: one line, whether one device receives or a whole fleet.

Each device's upload reports (bytes sent, bytes in all) from its own thread; with one
device the line is its bar, with several it sums them up, so concurrent uploads do not
overwrite each other's bars on the same line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

Progress = Callable[[int, int], None]  # (bytes sent, bytes in all), per device
WIDTH = 30


class TransferProgress:
    """The shared line of ``labels``' uploads; :meth:`reporter` gives each its callback."""

    def __init__(self, labels: Sequence[str], stream: TextIO | None = None) -> None:
        self.labels = list(labels)
        self.stream = stream or sys.stderr
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
        filled = int(WIDTH * done / total) if total else WIDTH
        bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done / 2**20:.1f}/{total / 2**20:.1f} MiB"
        if len(self.labels) == 1:
            self.stream.write(f"\r{label}: {bar}")
            if finished:
                self.stream.write("\n")
        else:
            complete = sum(d >= t for d, t in self._state.values())
            self.stream.write(
                f"\rupload to {len(self._state)} of {len(self.labels)} devices: {bar}, "
                f"{complete} complete"
            )
            if complete == len(self._state):  # a device starting later draws a new line
                self.stream.write("\n")
        self.stream.flush()


def transfer_reporters(labels: Sequence[str]) -> dict[str, Progress]:
    """A callback per label drawing the shared line, or none when stderr is no terminal."""
    if not sys.stderr.isatty():
        return {}
    line = TransferProgress(labels)
    return {label: line.reporter(label) for label in labels}
