""":class:`~.device_files.DeviceFiles` over an SSH target's one connection: its memoized
SFTP session for files, quoted exec for commands, the lock and the upload of
:mod:`.lock` and :mod:`.upload`. Opens no connection of its own.

paramiko's ``open`` sends no mode (the server then creates 0666 less its umask): a file
is made private on its handle before a byte is written to it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.deploy.device_files import PRIVATE_DIR, PRIVATE_FILE, Entry, FileStat
from edgeship.deploy.lock import device_lock
from edgeship.deploy.upload import Sent, stream_to_device

if TYPE_CHECKING:
    import paramiko

    from edgeship.core.progress import Progress
    from edgeship.ssh.connection import CommandResult, Connection

__all__ = ["SftpFiles"]


class SftpFiles:
    """The files and commands of the device behind ``conn``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.label = conn.label

    def home(self) -> str:
        return self.conn.sftp().normalize(".")

    def lstat(self, path: str) -> FileStat:
        return _stat(self.conn.sftp().lstat(path))

    def read(self, path: str) -> bytes:
        with self.conn.sftp().open(path, "rb") as f:
            return f.read()

    def write(self, path: str, data: bytes) -> None:
        with self.conn.sftp().open(path, "wb") as f:
            f.chmod(PRIVATE_FILE)
            f.write(data)

    def touch(self, path: str) -> None:
        self.conn.sftp().utime(path, None)

    def listdir(self, path: str) -> list[Entry]:
        return [Entry(a.filename, _stat(a)) for a in self.conn.sftp().listdir_attr(path)]

    def mkdir(self, path: str) -> None:
        self.conn.sftp().mkdir(path, PRIVATE_DIR)

    def chmod(self, path: str, mode: int) -> None:
        self.conn.sftp().chmod(path, mode)

    def remove(self, path: str) -> None:
        self.conn.sftp().remove(path)

    def rmtree(self, path: str) -> None:
        # one command, not a round trip per entry; rm -rf follows no link inside
        self.conn.run(["rm", "-rf", "--", path])

    def rename(self, source: str, dest: str) -> None:
        self.conn.sftp().posix_rename(source, dest)

    def symlink(self, target: str, path: str) -> None:
        self.conn.sftp().symlink(target, path)

    def readlink(self, path: str) -> str:
        return self.conn.sftp().readlink(path) or ""

    def free_bytes(self, path: str) -> int:
        # OpenSSH's statvfs@openssh.com extension, which paramiko has no method for: a
        # reply of eleven uint64 (f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, ...)
        from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

        kind, reply = self.conn.sftp()._request(CMD_EXTENDED, "statvfs@openssh.com", path)
        if kind != CMD_EXTENDED_REPLY or reply is None:
            raise OSError(f"{self.label}: the SFTP server does not say how much space is free")
        fields = [reply.get_int64() for _ in range(5)]
        return fields[4] * fields[1]

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        return self.conn.run(list(argv), timeout=timeout, check=check, stdin=stdin)

    @contextmanager
    def lock(self, path: str, wait: float, what: str) -> Iterator[float]:
        with device_lock(self.conn, path, wait, what) as now:
            yield now

    def receive(
        self,
        local: Path,
        remote: str,
        where: str,
        progress: Progress | None = None,
        need: int = 0,
        resume: bool = False,
    ) -> Sent:
        return stream_to_device(self.conn, local, remote, where, progress, need, resume)


def _stat(attrs: paramiko.SFTPAttributes) -> FileStat:
    return FileStat(attrs.st_mode or 0, attrs.st_size or 0, int(attrs.st_mtime or 0))
