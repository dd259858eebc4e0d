"""Processes on this machine: whether one is stopped, and ending it (Linux /proc).

The ``local`` target's counterpart of :mod:`edgeship.ssh.procs`, read here in Python
instead of by a shell on the device: a stopped process (SIGSTOP, a debugger: state
``T``/``t`` in /proc/PID/stat) answers nothing and never sees SIGTERM until continued,
so :func:`end` sends SIGCONT first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["end", "is_stopped", "started", "stopped"]

_STOPPED = {"T", "t"}


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state first); None if gone."""
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return line.rpartition(")")[2].split()


def stopped(group: int) -> list[int]:
    """The stopped processes of process ``group`` (none: it runs, is gone, or no /proc)."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            fields = _stat(entry.name) if entry.name.isdigit() else None
            if fields and fields[2] == str(group) and fields[0] in _STOPPED:
                pids.append(int(entry.name))
    return pids


def is_stopped(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] in _STOPPED


def started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, stat field 22), to tell a reused pid
    from it; None when it is gone."""
    fields = _stat(pid)
    return fields[19] if fields else None


def end(pid: int, grace: float) -> None:
    """End process ``pid``, a stopped one too: SIGCONT, SIGTERM, SIGKILL after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (_stat(pid) or ["Z"])[0] != "Z":
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
