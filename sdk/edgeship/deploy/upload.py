"""Stream a file into the device, which hashes what it writes: one pass, about scp's speed.

One exec channel runs a small receiver with the device's python3; the host writes the
file to its stdin. The receiver refuses before writing when the file would not fit,
writes and hashes in the same pass, makes the bytes durable and answers with their
sha256, so the caller can verify before anything points at them. An SFTP upload followed
by a second read for the hash took about twice as long.
"""

from __future__ import annotations

from pathlib import Path

import paramiko

from ..errors import DeployError
from ..progress import Progress
from ..ssh.connection import Connection

# Runs on the device with its python3: refuse ("nospace FREE") unless argv[2] bytes fit,
# else write stdin to argv[1], hashing what it writes, make it durable, and print the
# sha256 of the bytes on disk. One process: no separate `df` round trip.
RECEIVE_SCRIPT = """
import hashlib, os, sys
st = os.statvfs(os.path.dirname(sys.argv[1]))
if st.f_bavail * st.f_frsize < int(sys.argv[2]):
    print("nospace", st.f_bavail * st.f_frsize, flush=True)
    sys.exit(3)
digest = hashlib.sha256()
with open(sys.argv[1], "wb") as f:
    for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
        f.write(chunk)
        digest.update(chunk)
    f.flush()
    os.fsync(f.fileno())
print(digest.hexdigest(), flush=True)
"""
CHUNK = 1 << 20
SPACE_MARGIN = 1.05  # room asked for beyond the file itself (filesystem overhead)


class NoSpace(DeployError):
    """The device refused the upload before writing: the file would not fit."""

    def __init__(self, label: str, where: str, size: int, free: int) -> None:
        super().__init__(
            f"{label}: not enough space under {where}: need {size / 2**20:.1f} MiB, "
            f"{free / 2**20:.1f} MiB free; nothing was changed",
            target=label,
        )


class UploadFailed(DeployError):
    """The transfer broke off (connection lost, receiver died); ``remote`` may be partial."""


def stream_to_device(
    conn: Connection,
    local: Path,
    remote: str,
    where: str,
    progress: Progress | None = None,
    need: int = 0,
) -> str:
    """Send ``local`` to ``remote`` on the device; the sha256 the device computed of what it
    wrote. ``where`` names the deploy root in a no-space error. ``need``: bytes that must
    fit before anything is written (default: the file's size; the first file of a model of
    several asks room for all of them)."""
    size = local.stat().st_size
    need = max(need, size)
    receiver = conn.start(["python3", "-c", RECEIVE_SCRIPT, remote, str(int(need * SPACE_MARGIN))])
    receiver.channel.settimeout(conn.timeouts.command)  # a stalled device ends
    try:
        sent = 0
        with local.open("rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                receiver.write(chunk)
                sent += len(chunk)
                if progress:
                    progress(sent, size)
        receiver.close()
        status = receiver.exit_status(conn.timeouts.command)
        answer = receiver.read_rest(timeout=5.0).decode(errors="replace").strip()
    except (OSError, paramiko.SSHException, EOFError) as exc:
        answer = receiver.read_rest(timeout=1.0).decode(errors="replace").strip()
        receiver.channel.close()
        if answer.startswith("nospace"):  # it refused before we had sent everything
            raise NoSpace(conn.label, where, need, int(answer.split()[1])) from None
        reason = (
            f"lost the connection: {conn.lost_reason()}"
            if conn.lost()
            else str(exc) or "connection closed"
        )
        raise _failed(conn, local, remote, reason) from None
    receiver.channel.close()
    if answer.startswith("nospace"):
        raise NoSpace(conn.label, where, need, int(answer.split()[1]))
    if status != 0:
        last = (receiver.stderr_tail().strip().splitlines() or ["no answer"])[-1]
        raise _failed(conn, local, remote, last)
    return answer


def send_verified(
    conn: Connection,
    local: Path,
    remote: str,
    sha256: str,
    where: str,
    progress: Progress | None = None,
    need: int = 0,
) -> None:
    """:func:`stream_to_device`, then a DeployError unless the device wrote ``sha256``."""
    if stream_to_device(conn, local, remote, where, progress, need) != sha256:
        raise DeployError(
            f"{conn.label}: {local.name} arrived corrupted (sha256 mismatch on the device); "
            "nothing was activated",
            target=conn.label,
        )


def progress_from(progress: Progress | None, done: int, total: int) -> Progress | None:
    """``progress`` for one file of several: its bytes counted after ``done``, of ``total``."""
    if progress is None:
        return None
    report = progress
    return lambda sent, _size: report(done + sent, total)


def _failed(conn: Connection, local: Path, remote: str, reason: str) -> UploadFailed:
    return UploadFailed(
        f"{conn.label}: upload of {local.name} to {remote} failed ({reason}); the active "
        "version is unchanged — if the disk is full, free space and retry",
        target=conn.label,
    )
