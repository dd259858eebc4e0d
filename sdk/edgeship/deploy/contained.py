"""The deploy root's files, kept inside it: every operation the store makes goes here.

Whatever the transport (:mod:`.device_files`), a path reaches it only when it lies under
the root, is normalized (no ``..``, ``.`` or empty component) and no directory between
the root and it is a symbolic link — each one is looked at with ``lstat``. A link there
is refused with :class:`LinkRefused`, which names it, where it points and how to fix it:
a user's ROOT/blobs that points at a directory of theirs would otherwise have edgeship
hash, list and delete files it never made. Entries edgeship reads or writes whole (a
meta.json, the lock, a blob it hashes, a directory it lists) must not be links either;
a link edgeship made itself (``current``, a version's model link) is read with
``readlink``, removed or replaced, never followed here. The root itself, and what lies
above it, is the user's choice: a root that is a link is taken as given.
"""

from __future__ import annotations

import contextlib
import errno
import json
import posixpath
import shlex
import stat
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import DeployError, UsageError
from edgeship.deploy.device_files import DeviceFiles, Entry, FileStat
from edgeship.deploy.lock import holder_record

if TYPE_CHECKING:
    from edgeship.core.progress import Progress
    from edgeship.deploy.upload import NoSpace, Sent
    from edgeship.ssh.connection import CommandResult

__all__ = ["BLOCK", "GROUP_OTHER", "Contained", "LinkRefused"]

BLOCK = 4096
"""Bytes a small write (a directory, a link, a file's last block) needs at least."""
GROUP_OTHER = 0o077
"""The permission bits edgeship's entries never carry (see :meth:`Contained.make_private`)."""


class LinkRefused(DeployError):
    """A symbolic link under the deploy root where edgeship keeps its own files."""

    def __init__(self, label: str, path: str, points_to: str, why: str = "") -> None:
        what = why or "edgeship will not follow links under its deploy root"
        super().__init__(
            f"{label}: {path} is a symbolic link (to {points_to}): {what}; remove it "
            f"(rm {shlex.quote(path)}) or choose another --deploy-root",
            target=label,
            path=path,
            points_to=points_to,
        )
        self.path = path
        self.points_to = points_to


class Contained:
    """``files`` limited to what lies under ``root`` (see the module docstring)."""

    def __init__(self, files: DeviceFiles, root: str) -> None:
        self.files = files
        self.root = root
        self.label = files.label
        self._present: set[str] = set()  # directories known to exist on the device

    # -- the checks -------------------------------------------------------------------------

    def inside(self, path: str) -> str:
        """``path``, once it lies under the root with no link on the way to it."""
        relative = posixpath.relpath(path, self.root) if posixpath.isabs(path) else ".."
        parts = relative.split("/")
        if posixpath.join(self.root, relative) != path or parts[0] in (".", ".."):
            raise UsageError(f"{self.label}: refusing device path {path!r}: outside {self.root}")
        for depth in range(1, len(parts)):
            seen = self._lstat(posixpath.join(self.root, *parts[:depth]))
            if seen is None:
                break  # nothing deeper exists
            self._refuse_link(posixpath.join(self.root, *parts[:depth]), seen)
        return path

    def real(self, path: str) -> str:
        """``path`` inside (see :meth:`inside`) and not a link itself: for what is read,
        written, hashed or listed whole."""
        seen = self._lstat(self.inside(path))
        if seen is not None:
            self._refuse_link(path, seen)
        return path

    def refuse_link(self, path: str, why: str = "") -> LinkRefused:
        """The error for a link found where edgeship keeps its own entries, or for one it
        made (``current``) that points elsewhere (``why``)."""
        return LinkRefused(self.label, path, self._points_to(path), why)

    def _refuse_link(self, path: str, seen: FileStat) -> None:
        if stat.S_ISLNK(seen.mode):
            raise LinkRefused(self.label, path, self._points_to(path))

    def _points_to(self, path: str) -> str:
        try:
            return self.files.readlink(path)
        except OSError:
            return "?"

    def _lstat(self, path: str) -> FileStat | None:
        try:
            return self.files.lstat(path)
        except FileNotFoundError:
            return None

    # -- reading ----------------------------------------------------------------------------

    def lstat(self, path: str) -> FileStat:
        return self.files.lstat(self.inside(path))

    def exists(self, path: str) -> bool:
        """Whether ``path`` (inside, or the root itself) is there; a link counts."""
        return self._lstat(path if path == self.root else self.inside(path)) is not None

    def read_json(self, path: str) -> dict[str, Any]:
        """The JSON object in ``path``; {} when it is missing, unreadable or no object."""
        try:
            data = json.loads(self.files.read(self.real(path)).decode())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def listdir(self, path: str) -> list[Entry]:
        """The entries of ``path`` (none when it is missing or unreadable)."""
        try:
            return self.files.listdir(self.real(path))
        except OSError:
            return []

    def names(self, path: str) -> list[str]:
        return [entry.name for entry in self.listdir(path)]

    def readlink(self, path: str) -> str:
        return self.files.readlink(self.inside(path))

    # -- writing ----------------------------------------------------------------------------

    def write_file(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically: a reader sees the old file or the new
        (written beside it under a temporary name, then renamed over it; the temporary
        file removed if that fails)."""
        part = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.part")
        try:
            with self._writing(len(data) + BLOCK):
                self.files.write(self.real(part), data)
                self.files.rename(part, self.inside(path))
        except BaseException:
            self.remove(part)
            raise

    def touch(self, path: str) -> None:
        self.files.touch(self.real(path))

    def makedirs(self, *parts: str) -> None:
        """``mkdir -p ROOT/parts...``; directories seen once are not asked again."""
        for depth in range(len(parts) + 1):
            path = posixpath.join(self.root, *parts[:depth])
            if path in self._present:
                continue
            try:
                self.files.mkdir(path if not depth else self.inside(path))
            except OSError as exc:
                seen = self._lstat(path)
                if seen is None:
                    raise self._short_of_space(BLOCK) or DeployError(
                        f"{self.label}: cannot create {path}: {exc}", target=self.label
                    ) from None
                if depth:
                    self._refuse_link(path, seen)
            self._present.add(path)

    def mkdir(self, path: str) -> None:
        with self._writing(BLOCK):
            self.files.mkdir(self.inside(path))

    def make_private(self, names: Sequence[str]) -> int:
        """Take the group's and others' access away from the entries ``names`` of the root,
        everything in them, and the root itself (an older edgeship made them readable to
        every user of the device): links are neither followed nor changed, nothing else
        is touched, and nothing is walked once the root and ``names`` are private (the
        walk changes them last). Returns the number of entries changed."""
        root = self._lstat(self.root)
        if root is None:
            return 0
        top = [e for e in self.files.listdir(self.root) if e.name in names]
        if all(_private(e.stat) for e in [*top, Entry("", root)]):
            return 0
        changed = sum(self._tighten(posixpath.join(self.root, e.name), e.stat) for e in top)
        return changed + self._tighten(self.root, root, walk=False)

    def _tighten(self, path: str, seen: FileStat, walk: bool = True) -> int:
        """Make ``path`` private, and (``walk``) what a directory holds, its entries first."""
        if stat.S_ISLNK(seen.mode):
            return 0
        changed = 0
        if walk and stat.S_ISDIR(seen.mode):
            with contextlib.suppress(OSError):  # one we cannot list is left as it is
                for entry in self.files.listdir(path):
                    changed += self._tighten(posixpath.join(path, entry.name), entry.stat)
        if not _private(seen):
            with contextlib.suppress(OSError):  # not ours to change (another owner)
                self.files.chmod(path, stat.S_IMODE(seen.mode) & ~GROUP_OTHER)
                changed += 1
        return changed

    def symlink(self, target: str, path: str) -> None:
        """A link at ``path`` (inside) with the text ``target``, which edgeship composed."""
        with self._writing(BLOCK):
            self.files.symlink(target, self.inside(path))

    def rename(self, source: str, dest: str) -> None:
        with self._writing(BLOCK):
            self.files.rename(self.inside(source), self.inside(dest))

    @contextlib.contextmanager
    def _writing(self, need: int) -> Iterator[None]:
        """A write that fails for want of space raises :class:`.upload.NoSpace` (over
        SFTP a full disk is only "Failure": the free space says it); any other failure
        stays what it was."""
        try:
            yield
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
            raise self._short_of_space(need, full) or exc from None

    def _short_of_space(self, need: int, full: bool = False) -> NoSpace | None:
        """The error for a write of ``need`` bytes that failed, if the disk lacks them."""
        from edgeship.deploy.upload import NoSpace

        try:
            free = self.files.free_bytes(self.root)
        except OSError:
            return NoSpace(self.label, self.root, need, 0) if full else None
        return NoSpace(self.label, self.root, need, free) if full or free < need else None

    def remove(self, path: str) -> None:
        """Remove a file or a link, if it is there."""
        with contextlib.suppress(OSError):
            self.files.remove(self.inside(path))

    def remove_tree(self, path: str) -> None:
        """Remove a file, or a directory with all in it; refuse a link (it is not ours)."""
        seen = self._lstat(self.inside(path))
        if seen is None:
            return
        self._refuse_link(path, seen)
        if stat.S_ISDIR(seen.mode):
            self.files.rmtree(path)
        else:
            self.remove(path)
        self._present = {p for p in self._present if p != path and not p.startswith(path + "/")}

    # -- commands and transfers -------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """A command; any path of ours in ``argv`` must have passed :meth:`real`."""
        return self.files.run(argv, timeout, check, stdin)

    def lock(self, path: str, wait: float) -> AbstractContextManager[float]:
        self.real(holder_record(path))  # an SSH holder writes there (lock.py)
        return self.files.lock(self.real(path), wait, self.root)

    def receive(
        self,
        local: Path,
        remote: str,
        progress: Progress | None = None,
        need: int = 0,
        resume: bool = False,
    ) -> Sent:
        return self.files.receive(local, self.real(remote), self.root, progress, need, resume)


def _private(seen: FileStat) -> bool:
    """Whether no one but the owner may use the entry (a link's own bits mean nothing)."""
    return stat.S_ISLNK(seen.mode) or not seen.mode & GROUP_OTHER
