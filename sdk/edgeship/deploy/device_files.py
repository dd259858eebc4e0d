"""What deploy needs of a device's file system, whatever carries it: :class:`DeviceFiles`.

The store (store.py and its helpers) never touches SFTP, ``os`` or a shell itself: it
goes through a :class:`DeviceFiles`, and always through :class:`.contained.Contained`,
which keeps every path inside the deploy root and refuses symbolic links on the way.
Two transports implement it: :class:`.sftp_files.SftpFiles` (an SSH target's
connection) and :class:`.local_files.LocalFiles` (this machine, the ``local`` target).

Paths are absolute POSIX paths on the device. Operations act on the entry they name and
never follow a link there (``lstat``, ``remove``, ``rename``, ``readlink``); a missing
entry raises :class:`FileNotFoundError`, any other failure :class:`OSError` (SFTP says
no more than "Failure" for a full disk: ``free_bytes`` tells the cause). What the
store cannot do as plain file operations — hashing, signature checks, the deploy lock,
the hashed upload — runs as a command (``run``) or a dedicated, bounded operation
(``lock``, ``receive``) that each transport does its own way.

Whatever a transport creates is private to the device user: directories
:data:`PRIVATE_DIR` (0700), files :data:`PRIVATE_FILE` (0600), the mode given when the
entry is made (a umask only narrows it), set again where the transport cannot give it
then or the file was there before.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgeship.core.progress import Progress
    from edgeship.deploy.upload import Sent
    from edgeship.ssh.connection import CommandResult

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "DeviceFiles", "Entry", "FileStat"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class FileStat:
    """An entry's type and permission bits (``st_mode``), size and whole-second mtime."""

    mode: int
    size: int
    mtime: int


@dataclass(frozen=True)
class Entry:
    """One entry of a directory listing, not followed if it is a link."""

    name: str
    stat: FileStat


class DeviceFiles(Protocol):
    """A device's files and commands (see the module docstring)."""

    label: str
    """The device as errors name it."""

    def home(self) -> str:
        """The device user's home directory (a relative deploy root starts there)."""

    def lstat(self, path: str) -> FileStat: ...

    def read(self, path: str) -> bytes: ...

    def write(self, path: str, data: bytes) -> None:
        """Create or truncate ``path``, mode :data:`PRIVATE_FILE`, and write ``data`` (not
        atomic: see Contained)."""

    def touch(self, path: str) -> None:
        """Set an existing file's mtime to now."""

    def listdir(self, path: str) -> list[Entry]: ...

    def mkdir(self, path: str) -> None:
        """Create the directory ``path``, mode :data:`PRIVATE_DIR`."""

    def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of ``path``, which must be no link (it would be
        followed)."""

    def remove(self, path: str) -> None:
        """Remove a file or a link (not what it points to)."""

    def rmtree(self, path: str) -> None:
        """Remove a directory and everything in it, following no link inside."""

    def rename(self, source: str, dest: str) -> None:
        """Rename in one step, replacing ``dest`` (POSIX rename)."""

    def symlink(self, target: str, path: str) -> None: ...

    def readlink(self, path: str) -> str: ...

    def free_bytes(self, path: str) -> int:
        """Bytes an unprivileged user may still write on the file system of ``path``
        (``statvfs``: ``f_bavail * f_frsize``)."""

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` (no shell; quoted as one when it must cross one) to completion
        within ``timeout`` seconds (default: the transport's command timeout)."""

    def lock(self, path: str, wait: float, what: str) -> AbstractContextManager[float]:
        """Hold an exclusive flock on ``path`` for the block, waiting up to ``wait`` s;
        released when the block ends or this process dies. Yields the device's clock.
        ``what`` names the locked thing in errors."""

    def receive(
        self,
        local: Path,
        remote: str,
        where: str,
        progress: Progress | None = None,
        need: int = 0,
        resume: bool = False,
    ) -> Sent:
        """Write ``local`` to ``remote``, hashed and made durable on the device as it is
        written, resuming what an earlier try left with ``resume``, refused before a
        byte is written unless ``need`` bytes fit (see :mod:`.upload`)."""
