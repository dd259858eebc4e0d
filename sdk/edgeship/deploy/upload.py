"""Stream a file into the device, which hashes what it writes: one pass, about scp's speed.

One exec channel runs a small receiver with the device's python3; the host writes the
file to its stdin. The receiver refuses before writing when the file would not fit,
writes and hashes in the same pass, makes the bytes durable and answers with their
sha256, so the caller can verify before anything points at them. An SFTP upload followed
by a second read for the hash took about twice as long.

Resume: with ``resume``, the receiver first says how much of the file it keeps from an
earlier, interrupted try (``offset N``: what is there, less the last :data:`TAIL` bytes,
sent again since a torn tail is never trusted), hashes that prefix from its disk, and
appends the rest the host sends from there. The sha256 it answers covers the whole file,
so a resumed upload is verified exactly as a fresh one.

:func:`stream_to_device` drives the receiver over an SSH exec channel (the transport of
:class:`.sftp_files.SftpFiles`); :class:`.local_files.LocalFiles` runs the very same
receiver as a subprocess. Both read its answers with :func:`read_offset` and
:func:`received`; the caller compares the sha256 (install.py).
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path

import paramiko

from edgeship.core.errors import DeployError
from edgeship.core.progress import Progress
from edgeship.ssh.connection import Connection

__all__ = [
    "CHUNK",
    "RECEIVE_SCRIPT",
    "SPACE_MARGIN",
    "TAIL",
    "NoSpace",
    "Refused",
    "Sent",
    "UploadFailed",
    "progress_from",
    "read_offset",
    "received",
    "receiver_argv",
    "stream_to_device",
    "upload_failed",
]

# Runs on the device with its python3: with argv[3] == "1", keep what argv[1] holds but
# its last TAIL bytes; refuse ("nospace FREE") unless argv[2] bytes, less those kept, fit; else
# take an flock on the file (a receiver of an interrupted try may still be draining its
# pipe into it), say "offset N" (bytes kept), hash those from disk, append stdin after
# them as they come (read1: what a cut connection had delivered is on disk, not in a
# buffer), hashing what it writes, make it durable, and print the sha256 of the whole
# file. One process: no separate `df` or `stat` round trip.
RECEIVE_SCRIPT = """
import fcntl, hashlib, os, stat, sys
path, need, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3:4] == ["1"]
def kept(size):
    return max(0, size - (1 << 16)) if resume else 0
try:
    seen = os.lstat(path)
    have = seen.st_size if stat.S_ISREG(seen.st_mode) else 0
except OSError:
    have = 0
st = os.statvfs(os.path.dirname(path))
if st.f_bavail * st.f_frsize < need - kept(have):
    print("nospace", st.f_bavail * st.f_frsize, flush=True)
    sys.exit(3)
f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600), "r+b")
fcntl.flock(f, fcntl.LOCK_EX)
keep = kept(os.fstat(f.fileno()).st_size)
print("offset", keep, flush=True)
digest = hashlib.sha256()
left = keep
while left:
    chunk = f.read(min(1 << 20, left))
    if not chunk:
        break
    digest.update(chunk)
    left -= len(chunk)
f.seek(keep)
f.truncate()
try:  # a larger pipe: read1 then returns up to 1 MiB at a time, not 64 KiB
    fcntl.fcntl(0, 1031, 1 << 20)  # F_SETPIPE_SZ (Linux)
except OSError:
    pass
for chunk in iter(lambda: sys.stdin.buffer.read1(1 << 20), b""):
    f.write(chunk)
    digest.update(chunk)
f.flush()
os.fsync(f.fileno())
print(digest.hexdigest(), flush=True)
"""
CHUNK = 1 << 20
TAIL = 1 << 16  # what a resumed upload sends again of what the device kept (RECEIVE_SCRIPT)
SPACE_MARGIN = 1.05  # room asked for beyond the file itself (filesystem overhead)


class NoSpace(DeployError):
    """The device's disk cannot take what was to be written there: refused by the upload
    before a byte was written, or a write under the deploy root that failed for want of
    space (see :class:`.contained.Contained`) and was undone."""

    def __init__(self, label: str, where: str, size: int, free: int) -> None:
        super().__init__(
            f"{label}: not enough space under {where}: need {_amount(size)}, "
            f"{_amount(free)} free; nothing was changed",
            target=label,
        )
        self.size_bytes = size
        self.free_bytes = free


def _amount(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


class UploadFailed(DeployError):
    """The transfer broke off (connection lost, receiver died); ``remote`` may be partial."""


@dataclass(frozen=True)
class Sent:
    """What one upload did: the sha256 the device computed of the whole file, the bytes
    the device kept from an earlier try, and the bytes this one sent."""

    sha256: str
    resumed_bytes: int
    sent_bytes: int


def receiver_argv(python: str, remote: str, need: int, resume: bool) -> list[str]:
    """How to start the receiver (:data:`RECEIVE_SCRIPT`) with ``python``: ``need`` bytes
    must fit, with room for the filesystem's overhead."""
    return [python, "-c", RECEIVE_SCRIPT, remote, str(int(need * SPACE_MARGIN)), str(int(resume))]


def stream_to_device(
    conn: Connection,
    local: Path,
    remote: str,
    where: str,
    progress: Progress | None = None,
    need: int = 0,
    resume: bool = False,
) -> Sent:
    """Send ``local`` to ``remote`` on the device (``resume``: after what an earlier try
    left there, see the module docstring); the sha256 the device computed of the whole
    file. ``where`` names the deploy root in a no-space error. ``need``: bytes that must
    fit before anything is written (default: the file's size; the first file of a model of
    several asks room for all of them)."""
    size = local.stat().st_size
    need = max(need, size)
    receiver = conn.start(receiver_argv("python3", remote, need, resume))
    receiver.channel.settimeout(conn.timeouts.command)  # a stalled device ends
    offset = sent = 0
    try:
        first = receiver.watched(receiver.next_line, conn.timeouts.command)
        if first is None:
            raise queue.Empty
        offset = read_offset(first, size)
        with local.open("rb") as f:
            f.seek(offset)
            for chunk in iter(lambda: f.read(CHUNK), b""):
                receiver.write(chunk)
                sent += len(chunk)
                if progress:
                    progress(offset + sent, size)
        receiver.close()
        status = receiver.finished(conn.timeouts.command)
        answer = receiver.read_rest(timeout=5.0).decode(errors="replace").strip()
    except Refused as refused:  # before a byte was sent: no space, or no receiver
        receiver.exit_status(1.0)
        last = (receiver.stderr_tail().strip().splitlines() or ["no answer"])[-1]
        receiver.channel.close()
        if refused.line.startswith(b"nospace"):
            raise NoSpace(conn.label, where, need, int(refused.line.split()[1])) from None
        reason = f"lost the connection: {conn.lost_reason()}" if conn.lost() else last
        raise upload_failed(conn.label, local, remote, reason) from None
    except (OSError, paramiko.SSHException, EOFError, queue.Empty) as exc:
        answer = receiver.read_rest(timeout=1.0).decode(errors="replace").strip()
        receiver.channel.close()
        if answer.startswith("nospace"):  # it refused before we had sent everything
            raise NoSpace(conn.label, where, need, int(answer.split()[1])) from None
        reason = (
            f"lost the connection: {conn.lost_reason()}"
            if conn.lost()
            else str(exc) or "connection closed"
        )
        raise upload_failed(conn.label, local, remote, reason) from None
    receiver.channel.close()
    label, tail = conn.label, receiver.stderr_tail()
    return Sent(received(label, local, remote, where, need, status, answer, tail), offset, sent)


def received(
    label: str,
    local: Path,
    remote: str,
    where: str,
    need: int,
    status: int | None,
    answer: str,
    stderr: str,
) -> str:
    """The sha256 a receiver that ran to its end answered; a :class:`NoSpace` or an
    :class:`UploadFailed` when it refused or failed instead."""
    if answer.startswith("nospace"):
        raise NoSpace(label, where, need, int(answer.split()[1]))
    if status != 0:
        last = (stderr.strip().splitlines() or ["no answer"])[-1]
        raise upload_failed(label, local, remote, last)
    return answer


class Refused(Exception):
    """The receiver's first line was no ``offset N``."""

    def __init__(self, line: bytes) -> None:
        super().__init__(line)
        self.line = line


def read_offset(line: bytes, size: int) -> int:
    """The ``offset N`` the receiver said first, bounded by the file's size."""
    said = line.split()
    if len(said) != 2 or said[0] != b"offset" or not said[1].isdigit():
        raise Refused(line.strip())
    return min(int(said[1]), size)


def progress_from(progress: Progress | None, done: int, total: int) -> Progress | None:
    """``progress`` for one file of several: its bytes counted after ``done``, of ``total``."""
    if progress is None:
        return None
    report = progress
    return lambda sent, _size: report(done + sent, total)


def upload_failed(label: str, local: Path, remote: str, reason: str) -> UploadFailed:
    return UploadFailed(
        f"{label}: upload of {local.name} to {remote} failed ({reason}); the active "
        "version is unchanged — if the disk is full, free space and retry",
        target=label,
    )
