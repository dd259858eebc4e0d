"""Subprocess and /proc helpers shared by the testbed modules.

Every external command goes through :func:`run`, so that each call has a
timeout and every failure surfaces as :class:`TestbedError` carrying the
command line and its stderr: a hung ``ip`` or ``useradd`` must never hang a
test session, and a failure must say what was tried.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 30.0


class TestbedError(RuntimeError):
    """Raised when the testbed cannot be brought up, driven or torn down."""

    __test__ = False  # keep pytest from collecting it because of the name


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with a timeout; raise TestbedError on timeout or failure."""
    cmd = shlex.join(argv)
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TestbedError(f"timed out after {timeout:.0f}s: {cmd}") from exc
    except OSError as exc:
        raise TestbedError(f"cannot run {cmd}: {exc}") from exc
    if check and proc.returncode != 0:
        raise TestbedError(
            f"command failed (exit {proc.returncode}): {cmd}\n"
            f"stderr: {proc.stderr.strip()}\nstdout: {proc.stdout.strip()[-2000:]}"
        )
    return proc


def _ppid_map() -> dict[int, int]:
    """Map every live pid to its parent pid, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The comm field may contain spaces and parens: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Return all live descendants of ``pid`` (children first, then theirs)."""
    children: dict[int, list[int]] = {}
    for child, parent in _ppid_map().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def pids_of_uid(uid: int) -> list[int]:
    """Return the pids whose real uid is ``uid``."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                pids.append(int(entry.name))
                break
    return pids


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_all(pids: Iterable[int], sig: int = signal.SIGKILL, wait: float = 5.0) -> None:
    """Send ``sig`` to every pid and wait (bounded) until they are gone."""
    targets = [pid for pid in pids if pid != os.getpid()]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(pid) for pid in targets):
        time.sleep(0.01)


def read_pid(pidfile: Path) -> int | None:
    """Return the pid stored in ``pidfile``, or None if absent/unparsable."""
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def cmdlines() -> dict[int, str]:
    """Map every live pid to its command line (NULs turned into spaces)."""
    result: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        result[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return result
