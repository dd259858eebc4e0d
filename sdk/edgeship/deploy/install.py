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

from edgeship.core.progress import Progress
from edgeship.deploy.files import ModelFiles
from edgeship.deploy.upload import progress_from, send_verified

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore


class Installer:
    """Uploads into one store's root (call with its lock held)."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store

    def install(self, local: Path, dest: str, sha: str) -> None:
        """Upload to ROOT/tmp (resuming what an interrupted try left there, see gc.py and
        upload.py), check the sha256 the device computed, then rename into place."""
        part = self._part_for(dest)
        self._send(local, part, sha, self.store.progress)
        self.store.conn.sftp().posix_rename(part, dest)

    def install_dir(self, files: ModelFiles, dest: str) -> None:
        """A multi-file model: every file into ROOT/tmp/<digest>.upload.part/ (the device
        hashing each as it writes, resuming what an interrupted try left), checked, then
        the directory renamed into place."""
        part = self._part_for(dest)
        sftp = self.store.conn.sftp()
        with contextlib.suppress(OSError):  # there already when resuming
            sftp.mkdir(part)
        total, done = files.total_bytes, 0
        for staged in files.files():
            remote = self._remote_file(part, staged.name)
            report = progress_from(self.store.progress, done, total)
            # the first file asks room for all
            self._send(staged.local, remote, staged.sha256, report, need=total - done)
            done += staged.size_bytes
        sftp.posix_rename(part, dest)

    def _part_for(self, dest: str) -> str:
        """``dest``'s directory and ROOT/tmp made; the part ``dest`` is uploaded to."""
        store = self.store
        store.makedirs(*posixpath.relpath(posixpath.dirname(dest), store.root).split("/"))
        store.makedirs("tmp")
        return store.housekeeping.upload_part(dest)

    def _send(
        self, local: Path, remote: str, sha: str, progress: Progress | None, need: int = 0
    ) -> None:
        store = self.store
        sent = send_verified(store.conn, local, remote, sha, store.root, progress, need, True)
        store.bytes_sent += sent.sent_bytes
        store.bytes_resumed += sent.resumed_bytes

    def _remote_file(self, directory: str, name: str) -> str:
        """``directory/name`` (``name`` may hold subdirectories: created here), inside."""
        layout, sftp = self.store.layout, self.store.conn.sftp()
        path = layout.inside(directory, name)
        parents = name.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            with contextlib.suppress(OSError):  # made for an earlier file; else send fails
                sftp.mkdir(layout.inside(directory, "/".join(parents[:depth])))
        return path
