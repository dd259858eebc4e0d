"""The deploy root's lock: an flock held by a process on the device for as long as we live.

The holder is started over its own exec channel: it takes the flock, says so with the
device's clock, and keeps it until its stdin closes — when we release it, or when this
host crashes or the connection drops (the kernel then releases the flock). No stale lock
file can outlive its owner. This is the lock of :class:`.sftp_files.SftpFiles`; the
``local`` target's :class:`.local_files.LocalFiles` holds the same flock in-process.

The holder is util-linux's ``flock`` where the device has it (every Debian, Ubuntu and
Raspberry Pi OS): a few small native processes, where a Python start costs seconds on a
slow board. Elsewhere (BusyBox's flock lacks ``-w``) it is python3 running
:data:`LOCK_SCRIPT`. Either says ``locked <device clock>`` or ``busy``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from edgeship.core.errors import DeployError, TargetError
from edgeship.deploy import orphans
from edgeship.ssh.procs import end_group, stopped

if TYPE_CHECKING:
    from edgeship.ssh.connection import Connection
    from edgeship.ssh.pipe import SSHPipe

__all__ = [
    "HOLDER",
    "LOCK_SCRIPT",
    "ORPHAN_CHECK_S",
    "busy",
    "device_lock",
    "holder_record",
    "lock_refused",
    "take_over_frozen",
]

# Runs on the device with its python3: take an exclusive flock (waiting up to argv[2]
# seconds), say "locked" and the device's clock, then hold it until stdin closes.
LOCK_SCRIPT = """
import fcntl, os, sys, time
try:
    f = open(sys.argv[1], "a")
except OSError as e:
    print("error", e.strerror or e, flush=True)
    sys.exit(4)
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except OSError:
        if time.monotonic() > deadline:
            print("busy", flush=True)
            sys.exit(3)
        time.sleep(0.1)
if len(sys.argv) > 4:  # the holder record (see orphans.py)
    with open(sys.argv[3], "w") as r:
        r.write(sys.argv[4] + "\\n")
print("locked", time.time(), os.getpgid(0), flush=True)
sys.stdin.read()
"""


# Runs with sh: util-linux flock when it works (exit 3 = timed out waiting), else python3.
# $1 lock file, $2 seconds to wait, $3 LOCK_SCRIPT, $4 the holder record to write once
# locked, $5 the host's half of it (orphans.identity); the device's half is the sshd
# session running this shell (its parent) and that session's start time. The lock and
# the record are made private (umask 077: 0600).
HOLDER = """
umask 077
lock=$1 wait=$2 script=$3 record=$4 who=$5
session=$PPID started=-
stat=$(cat "/proc/$session/stat" 2>/dev/null) && rest=${stat##*) } && set -- $rest && started=${20}
line="v2 $session $started $$ $who"
if command -v flock >/dev/null 2>&1; then
    flock -x -w "$wait" -E 3 "$lock" sh -c \
        'echo "$2" > "$1"; echo locked "$(date +%s)" "$3"; exec cat >/dev/null' \
        sh "$record" "$line" "$$"
    status=$?
    if [ "$status" = 3 ]; then echo busy; exit 3; fi
    if [ "$status" = 0 ]; then exit 0; fi
fi
exec python3 -c "$script" "$lock" "$wait" "$record" "$line"
"""
_log = logging.getLogger("edgeship")

ORPHAN_CHECK_S = 1.0
"""A lock still busy after this long is checked for an orphaned holder (orphans.py)."""


@contextlib.contextmanager
def device_lock(conn: Connection, path: str, wait: float, what: str) -> Iterator[float]:
    """Hold the flock on ``path`` for the block, waiting up to ``wait`` s for another
    holder, ending a holder whose connection is gone (see :mod:`.orphans`) or that stayed
    stopped for ``--unresponsive`` s (:func:`_frozen_holder`); yields the device's clock
    at the moment it was taken. ``what`` names the locked thing in errors. A holder of
    ours that does not let go when the block ends is ended too (it may be frozen)."""
    record, who = holder_record(path), orphans.identity(conn)
    deadline = time.monotonic() + wait
    step, frozen_since = min(wait, ORPHAN_CHECK_S), None
    while True:
        holder, answer = _take(conn, [path, f"{step:g}", LOCK_SCRIPT, record, who], step)
        left = deadline - time.monotonic()
        if answer.strip() != b"busy" or left <= 0:
            break
        holder.channel.close()  # it said busy and exited
        seen = orphans.read_record(conn, record)
        if seen is not None and seen.orphaned():
            orphans.end_session(conn, seen)
        frozen_since = _frozen_holder(conn, seen, frozen_since, what)
        step = min(left, max(ORPHAN_CHECK_S, conn.timeouts.unresponsive / 4))
    said = answer.split()
    if said[:1] != [b"locked"]:
        holder.kill()
        if answer.strip() == b"busy":
            reason = busy(wait)
        elif said[:1] == [b"error"]:
            reason = answer.decode(errors="replace").strip()[len("error ") :]
        else:  # the last line the helper wrote, not a whole traceback
            lines = holder.stderr_tail().strip().splitlines()
            reason = lines[-1].strip() if lines else "the lock helper did not answer"
        raise lock_refused(conn.label, what, reason)
    try:
        yield float(said[1])
    finally:
        holder.close()  # EOF on its stdin: the helper exits and the flock is released
        if holder.exit_status(timeout=5.0) is None and said[2:3] and said[2].isdigit():
            with contextlib.suppress(TargetError):  # stopped under us: end it
                end_group(conn, int(said[2]), conn.timeouts.unresponsive)
        holder.channel.close()


def _frozen_holder(
    conn: Connection, seen: orphans.HolderRecord | None, since: float | None, what: str
) -> float | None:
    """:func:`take_over_frozen` for the holder in record ``seen`` (a process group on the
    device); none in a record of an older edgeship."""
    if seen is None or seen.group is None:
        return None
    group, unresponsive = seen.group, conn.timeouts.unresponsive
    return take_over_frozen(
        conn.label,
        what,
        f"process group {group}, from {seen.host}",
        since,
        unresponsive,
        lambda: bool(stopped(conn, group, unresponsive)),
        lambda: end_group(conn, group, unresponsive),
    )


def take_over_frozen(
    label: str,
    what: str,
    holder: str,
    since: float | None,
    unresponsive: float,
    is_stopped: Callable[[], bool],
    end: Callable[[], object],
) -> float | None:
    """When the lock's ``holder`` was first seen stopped (None: it is not); once it has
    been for ``unresponsive`` s it is ended (``end``: SIGCONT, SIGTERM, SIGKILL), which
    frees the lock for the next try, and a line on the ``edgeship`` logger says so."""
    if not is_stopped():
        return None
    now = time.monotonic()
    if since is None or now - since < unresponsive:
        return since or now
    end()
    _log.warning(
        "%s: took over the lock on %s: its holder (%s) was stopped for over %g s "
        "(--unresponsive) and was ended",
        label, what, holder, unresponsive,
    )  # fmt: skip
    return None


def holder_record(path: str) -> str:
    """Where the holder of the lock on ``path`` says who it is (see :mod:`.orphans`)."""
    return f"{path}.holder"


def busy(wait: float) -> str:
    """Why a lock still held by another after ``wait`` s was not taken, in words."""
    return f"another deploy holds it (waited {wait:g} s; --lock-wait to wait longer); retry later"


def lock_refused(label: str, what: str, reason: str) -> DeployError:
    return DeployError(f"{label}: cannot lock {what}: {reason}", target=label)


def _take(conn: Connection, args: list[str], wait: float) -> tuple[SSHPipe, bytes]:
    """Start a holder with ``args`` (see :data:`HOLDER`); it and its first line."""
    holder = conn.start(["sh", "-c", HOLDER, "sh", *args])
    try:
        return holder, holder.readline(timeout=wait + conn.timeouts.connect)
    except queue.Empty:
        return holder, b""
