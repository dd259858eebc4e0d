"""Orphaned lock holders: a deploy whose connection died while the device never noticed.

A host that loses its network mid-deploy (Wi-Fi gone, a black hole on the way) gives its
connection up; the device, which hears nothing more and has nothing left to send, keeps
the SSH session — and the lock holder in it — open until its TCP keepalive fires, by
default after two hours. The next deploy would wait for the lock and fail.

So the holder writes a record next to the lock (:func:`identity` gives the host's half):
the device's sshd session process and its start time, and the connection as the *host*
saw it (host name, local and remote address). A waiter that finds the lock busy reads it
(:func:`read_record`); when the record names a connection of this very host that this
host no longer has (:meth:`HolderRecord.orphaned`), that session is dead for certain, and
the waiter ends it on the device (:func:`end_session`), which releases the lock. A holder
on another host, behind a jump host, or one this host still has open, is waited for.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

from edgeship.ssh.connection import Connection

__all__ = [
    "END_SESSION",
    "RECORD_VERSION",
    "SESSION_OF_SHELL",
    "HolderRecord",
    "end_session",
    "identity",
    "parse",
    "read_record",
]

RECORD_VERSION = "v2"

# Runs with sh on the device: end sshd session $1 if it still is the process that started
# at $2 (clock ticks since boot, /proc/PID/stat field 22) and runs as us; a reused pid is
# left alone. Prints "ended" or "gone".
END_SESSION = """
stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; exit 0; }
rest=${stat##*) }
set -- "$1" "$2" $rest
[ "${22}" = "$2" ] || { echo gone; exit 0; }
kill -TERM "$1" 2>/dev/null && echo ended || echo gone
"""

# The holder's half, for sh: "<session pid> <its start time>" of the sshd session that
# runs the holder (the parent of the shell that runs HOLDER in lock.py).
SESSION_OF_SHELL = """
session=$PPID
stat=$(cat "/proc/$session/stat" 2>/dev/null) && rest=${stat##*) } && set -- $rest && \
    started=${20} || started=-
"""


@dataclass(frozen=True)
class HolderRecord:
    """Who holds the lock: the device's sshd session, the connection as its host saw it."""

    session_pid: int
    session_started: str  # clock ticks since boot; "-" where the device has no /proc
    group: int | None  # the holder's process group (None: a v1 record, which has none)
    host: str
    local: tuple[str, int]  # the host's end of the connection
    remote: tuple[str, int]  # the device's end, as the host saw it

    def orphaned(self) -> bool:
        """Whether this holder's connection started on this host and is gone from it."""
        if self.host != _host_name() or self.session_started == "-" or not self.local[1]:
            return False
        established = _established()
        if established is None:  # this host does not say (no permission): assume alive
            return False
        return (self.local, self.remote) not in established


def identity(conn: Connection) -> str:
    """The host's half of a holder record for ``conn``: ``HOST LOCAL_IP LOCAL_PORT
    REMOTE_IP REMOTE_PORT`` (ports 0 when the connection is no plain TCP socket of ours,
    as through a jump host)."""
    transport = conn.open().get_transport()
    sock = getattr(transport, "sock", None)
    local, remote = ("-", 0), ("-", 0)
    with contextlib.suppress(AttributeError, OSError):
        local = _address(sock.getsockname())  # type: ignore[union-attr]
        remote = _address(sock.getpeername())  # type: ignore[union-attr]
    return f"{_host_name()} {local[0]} {local[1]} {remote[0]} {remote[1]}"


def parse(text: str) -> HolderRecord | None:
    """A record as the holder wrote it: ``v2 SESSION STARTED GROUP`` (``v1``: no GROUP,
    as an older edgeship wrote it) and :func:`identity`."""
    fields = text.split()
    if fields[:1] == ["v1"] and len(fields) == 8:
        fields.insert(3, "-")
    elif len(fields) != 9 or fields[0] != RECORD_VERSION:
        return None
    try:
        return HolderRecord(
            session_pid=int(fields[1]),
            session_started=fields[2],
            group=int(fields[3]) if fields[3].isdigit() else None,
            host=fields[4],
            local=(fields[5], int(fields[6])),
            remote=(fields[7], int(fields[8])),
        )
    except ValueError:
        return None


def read_record(conn: Connection, path: str) -> HolderRecord | None:
    try:
        with conn.sftp().open(path, "rb") as f:
            return parse(f.read(4096).decode(errors="replace"))
    except OSError:
        return None


def end_session(conn: Connection, record: HolderRecord) -> bool:
    """End the orphaned sshd session on the device (its lock holder and any upload in it
    with it); False when that process is already gone."""
    argv = ["sh", "-c", END_SESSION, "sh", str(record.session_pid), record.session_started]
    result = conn.run(argv, check=False)
    return result.stdout.strip() == b"ended"


def _host_name() -> str:
    return "".join(socket.gethostname().split()) or "-"


def _address(raw: tuple[object, ...]) -> tuple[str, int]:
    host, port = str(raw[0]), int(raw[1])  # type: ignore[call-overload]
    return host.removeprefix("::ffff:"), port


def _established() -> set[tuple[tuple[str, int], tuple[str, int]]] | None:
    """This host's established TCP connections as (local, remote); None if unreadable."""
    import psutil  # asked only of a busy lock: a deploy that finds it free never loads it

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    return {
        (_address(c.laddr), _address(c.raddr))
        for c in connections
        if c.status == psutil.CONN_ESTABLISHED and c.raddr
    }
