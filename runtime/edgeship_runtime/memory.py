"""Resident memory of this process: the current value and the peak over a window.

The peak is the kernel's own high-water mark where it can be reset (Linux:
``/proc/self/clear_refs`` ← 5 resets ``VmHWM``), so it is exact and costs nothing while
the model runs. Elsewhere it falls back to ``ru_maxrss``, the process-lifetime peak,
which the report names so that nobody mistakes it for a per-model figure.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Dict, Optional, Tuple

_MB = 1024.0 * 1024.0
_STATUS = "/proc/self/status"


def current_rss_mb() -> float:
    """Resident set size now, in MiB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _MB
    except (OSError, ValueError, IndexError):
        return _ru_maxrss_mb()


def _ru_maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak / 1024.0  # bytes vs KiB


def _read_vmhwm_mb() -> Optional[float]:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _reset_vmhwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """Peak RSS between :meth:`start` and :meth:`peak_mb`, with how it was measured."""

    def __init__(self) -> None:
        self.method = "ru_maxrss (peak over the process lifetime)"
        self._exact = False

    def start(self) -> None:
        if _reset_vmhwm() and _read_vmhwm_mb() is not None:
            self._exact = True
            self.method = "VmHWM, reset via /proc/self/clear_refs before the window"

    def peak_mb(self) -> float:
        if self._exact:
            value = _read_vmhwm_mb()
            if value is not None:
                return value
        return max(_ru_maxrss_mb(), current_rss_mb())


def available_memory() -> Tuple[Optional[int], Optional[int]]:
    """The system's memory available for a new allocation and its total, in bytes
    (``/proc/meminfo``: MemAvailable, MemTotal); None where unreadable."""
    found: Dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("MemAvailable", "MemTotal"):
                    found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found.get("MemAvailable"), found.get("MemTotal")
