""":class:`~.device_files.DeviceFiles` on this machine, for the ``local`` target: ``os``
for files (no link followed: ``O_NOFOLLOW``, ``lstat``), subprocesses for commands.

The deploy lock is the same flock the SSH transport's holder takes (:mod:`.lock`), held
here by this process: the kernel releases it when the block ends or the process dies,
so no holder can be orphaned. It writes its pid to the holder record, so that a holder
stopped for ``--unresponsive`` s is ended, as an SSH one is. The upload runs the SSH
transport's receiver (:data:`.upload.RECEIVE_SCRIPT`) with this Python, so a local
deploy is hashed, resumed and refused for space exactly as a remote one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgeship.core import procs
from edgeship.core.errors import RemoteCommandError, RemoteTimeout
from edgeship.deploy.device_files import PRIVATE_DIR, PRIVATE_FILE, Entry, FileStat
from edgeship.deploy.lock import busy, holder_record, lock_refused, take_over_frozen
from edgeship.deploy.upload import Refused, Sent, read_offset, received, receiver_argv
from edgeship.ssh.procs import GRACE_S

if TYPE_CHECKING:
    from edgeship.core.progress import Progress
    from edgeship.ssh.connection import CommandResult

__all__ = ["LocalFiles"]

CHUNK = 1 << 20
LOCK_POLL_S = 0.1


class LocalFiles:
    """This machine's files; ``timeout``: seconds a command may run; ``unresponsive``:
    seconds a stopped lock holder is waited for."""

    def __init__(
        self, label: str = "local", timeout: float = 600.0, unresponsive: float = 30.0
    ) -> None:
        self.label = label
        self.timeout = timeout
        self.unresponsive = unresponsive

    def home(self) -> str:
        return os.path.expanduser("~")

    def lstat(self, path: str) -> FileStat:
        st = os.lstat(path)
        return FileStat(st.st_mode, st.st_size, int(st.st_mtime))

    def read(self, path: str) -> bytes:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            return f.read()

    def write(self, path: str, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(path, flags, PRIVATE_FILE), "wb") as f:
            os.fchmod(f.fileno(), PRIVATE_FILE)  # a file that was there keeps its mode
            f.write(data)

    def touch(self, path: str) -> None:
        os.utime(path, None, follow_symlinks=False)

    def listdir(self, path: str) -> list[Entry]:
        return [Entry(name, self.lstat(os.path.join(path, name))) for name in os.listdir(path)]

    def mkdir(self, path: str) -> None:
        os.mkdir(path, PRIVATE_DIR)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode, follow_symlinks=False)

    def remove(self, path: str) -> None:
        os.remove(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path)  # refuses a link; follows none inside (fd-based on Linux)

    def rename(self, source: str, dest: str) -> None:
        os.rename(source, dest)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def readlink(self, path: str) -> str:
        return os.readlink(path)

    def free_bytes(self, path: str) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        from edgeship.ssh.connection import CommandResult

        timeout = timeout or self.timeout
        try:
            done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteTimeout(
                f"{self.label}: `{argv[0]}` took longer than {timeout:g} s", target=self.label
            ) from None
        result = CommandResult(done.returncode, done.stdout, done.stderr.decode(errors="replace"))
        if check and result.status != 0:
            raise RemoteCommandError(self.label, str(argv[0]), result.status, result.stderr)
        return result

    @contextmanager
    def lock(self, path: str, wait: float, what: str) -> Iterator[float]:
        """The flock on ``path``, held by this process (see the module docstring); a
        holder stopped for ``unresponsive`` s is ended (:meth:`_frozen_holder`)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, PRIVATE_FILE)
        except OSError as exc:
            raise lock_refused(self.label, what, str(exc.strerror or exc)) from None
        try:
            deadline, frozen_since = time.monotonic() + wait, None
            while not _try_flock(fd):
                if time.monotonic() > deadline:
                    raise lock_refused(self.label, what, busy(wait))
                frozen_since = self._frozen_holder(path, frozen_since, what)
                time.sleep(LOCK_POLL_S)
            self.write(
                holder_record(path), f"{os.getpid()} {procs.started(os.getpid())}\n".encode()
            )
            yield time.time()
        finally:
            os.close(fd)  # releases the flock

    def _frozen_holder(self, path: str, since: float | None, what: str) -> float | None:
        """:func:`.lock.take_over_frozen` for the process the holder record names, when it
        still is that process (not a reused pid)."""
        try:
            pid, start = self.read(holder_record(path)).decode().split()
        except (OSError, ValueError):
            return None
        if not pid.isdigit() or procs.started(int(pid)) != start:
            return None
        return take_over_frozen(
            self.label,
            what,
            f"process {pid}",
            since,
            self.unresponsive,
            lambda: procs.is_stopped(int(pid)),
            lambda: procs.end(int(pid), GRACE_S),
        )

    def receive(
        self,
        local: Path,
        remote: str,
        where: str,
        progress: Progress | None = None,
        need: int = 0,
        resume: bool = False,
    ) -> Sent:
        size = local.stat().st_size
        need = max(need, size)
        argv = receiver_argv(sys.executable, remote, need, resume)
        with subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as receiver:
            assert receiver.stdin is not None and receiver.stdout is not None
            first = receiver.stdout.readline()
            try:
                offset = read_offset(first, size)
                sent = _copy(local, offset, receiver.stdin, progress, size)
            except (Refused, BrokenPipeError):  # it refused (no space) or died
                out, err = receiver.communicate(timeout=self.timeout)
                answer = (out if first.startswith(b"offset") else first).decode(errors="replace")
                status = receiver.returncode or 1
                received(self.label, local, remote, where, need, status, answer.strip(), _text(err))
                raise  # not reached: received raises for a failed status
            out, err = receiver.communicate(timeout=self.timeout)  # closes its stdin first
        answer = out.decode(errors="replace").strip()
        status = receiver.returncode
        return Sent(
            received(self.label, local, remote, where, need, status, answer, _text(err)),
            offset,
            sent,
        )


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _text(stderr: bytes) -> str:
    return stderr.decode(errors="replace")


def _copy(local: Path, offset: int, sink: IO[bytes], progress: Progress | None, size: int) -> int:
    """Write ``local`` from ``offset`` into ``sink`` (the receiver's stdin); bytes sent."""
    sent = 0
    with local.open("rb") as f:
        f.seek(offset)
        for chunk in iter(lambda: f.read(CHUNK), b""):
            sink.write(chunk)
            sent += len(chunk)
            if progress:
                progress(offset + sent, size)
    return sent
