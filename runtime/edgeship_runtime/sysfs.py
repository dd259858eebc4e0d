"""Where the runtime reads the kernel's ``/sys`` from: the real one, or a tree a test made.

``EDGESHIP_SYSFS_ROOT`` (default ``/``) is put in front of every ``/sys`` path that
:mod:`.environment`, :mod:`.guards` and :mod:`.power` read, read again on every call, so
a test can point a runtime at a fake tree (with counters a thread advances) and a board
with an unusual mount can be pointed at its own. ``/proc`` is always the real one.
"""

from __future__ import annotations

import glob
import os
from typing import List, Optional

SYSFS_ROOT_ENV = "EDGESHIP_SYSFS_ROOT"


def root() -> str:
    return os.environ.get(SYSFS_ROOT_ENV) or "/"


def sys_path(*parts: str) -> str:
    """``/sys/<parts>`` under the root, e.g. ``sys_path("class", "powercap")``."""
    return os.path.join(root(), "sys", *parts)


def sys_glob(*parts: str) -> List[str]:
    """Sorted matches of a pattern under ``/sys`` (numeric parts in numeric order)."""
    return glob_sorted(sys_path(*parts))


def glob_sorted(pattern: str) -> List[str]:
    """Matches of ``pattern`` (a full path), ``cpu2`` before ``cpu10``."""
    return sorted(glob.glob(pattern), key=_natural)


def read_text(path: str) -> Optional[str]:
    """The file's text without trailing NULs, newlines and blanks; None if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def read_int(path: str) -> Optional[int]:
    text = read_text(path)
    if text is None or not text.lstrip("-").isdigit():
        return None
    return int(text)


def _natural(path: str) -> List[object]:
    """``cpu2`` before ``cpu10``."""
    parts: List[object] = []
    digits = ""
    for ch in path:
        if ch.isdigit():
            digits += ch
            continue
        if digits:
            parts.append(int(digits))
            digits = ""
        parts.append(ch)
    if digits:
        parts.append(int(digits))
    return [(0, p) if isinstance(p, int) else (1, p) for p in parts]
