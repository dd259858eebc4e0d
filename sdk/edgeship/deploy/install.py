"""Putting files into a device's deploy root: upload to ROOT/tmp, verify, rename.

Every upload goes to a part named after its destination (gc.py), so an interrupted one
is resumed by the next try (upload.py), and only bytes the device hashed as sent become
a blob or a runtime, by one rename.
"""

from __future__ import annotations

import contextlib
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.core.errors import DeployError
from edgeship.core.progress import Progress
from edgeship.deploy.files import ModelFiles
from edgeship.deploy.upload import progress_from

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore

__all__ = ["Installer"]


class Installer:
    """Uploads into one store's root (call with its lock held)."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store
        self.files = store.files

    def install(self, local: Path, dest: str, sha: str) -> None:
        """Upload to ROOT/tmp (resuming what an interrupted try left there, see gc.py and
        upload.py), check the sha256 the device computed, then rename into place."""
        part = self._part_for(dest)
        self._send(local, part, sha, self.store.progress)
        self.files.rename(part, dest)

    def install_dir(self, files: ModelFiles, dest: str) -> None:
        """A multi-file model: every file into ROOT/tmp/<digest>.upload.part/ (the device
        hashing each as it writes, resuming what an interrupted try left), checked, then
        the directory renamed into place."""
        part = self._part_for(dest)
        with contextlib.suppress(OSError):  # there already when resuming
            self.files.mkdir(part)
        total, done = files.total_bytes, 0
        for staged in files.files():
            remote = self._remote_file(part, staged.name)
            report = progress_from(self.store.progress, done, total)
            # the first file asks room for all
            self._send(staged.local, remote, staged.sha256, report, need=total - done)
            done += staged.size_bytes
        self.files.rename(part, dest)

    def _part_for(self, dest: str) -> str:
        """``dest``'s directory and ROOT/tmp made; the part ``dest`` is uploaded to."""
        store = self.store
        self.files.makedirs(*posixpath.relpath(posixpath.dirname(dest), store.root).split("/"))
        self.files.makedirs("tmp")
        return store.housekeeping.upload_part(dest)

    def _send(
        self, local: Path, remote: str, sha: str, progress: Progress | None, need: int = 0
    ) -> None:
        """Upload ``local`` to ``remote``, resuming; a DeployError unless the device wrote
        ``sha`` (the partial file is removed then: a resumed try must not build on it)."""
        store = self.store
        sent = self.files.receive(local, remote, progress, need, resume=True)
        if sent.sha256 != sha:
            self.files.remove(remote)
            raise DeployError(
                f"{store.label}: {local.name} arrived corrupted (sha256 mismatch on the "
                "device); nothing was activated",
                target=store.label,
            )
        store.bytes_sent += sent.sent_bytes
        store.bytes_resumed += sent.resumed_bytes

    def _remote_file(self, directory: str, name: str) -> str:
        """``directory/name`` (``name`` may hold subdirectories: created here), inside."""
        layout = self.store.layout
        path = layout.inside(directory, name)
        parents = name.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            with contextlib.suppress(OSError):  # made for an earlier file; else send fails
                self.files.mkdir(layout.inside(directory, "/".join(parents[:depth])))
        return path
