"""What a locked operation clears on the device: partial uploads, unreferenced blobs, pins.

ROOT/tmp holds only our own ``*.part`` entries, and clearing it never follows a link: a
ROOT/tmp that is itself a symbolic link is refused (clearing it would delete whatever it
points to, see :mod:`.contained`), and an entry that is a link or is not named ``*.part``
is left alone. So in ROOT/blobs and ROOT/pins: only entries named as edgeship names a
blob (:func:`.layout.is_blob_name`), and no link, are ever removed. An
upload's part (``<blob>.upload.part``) is kept :data:`PART_KEEP_S` so that a retry can
resume it; any other part (a version being built, an older naming) goes at once.

A *pin*, ROOT/pins/<blob name>, says when a profile or run last staged that blob (its
mtime). A blob pinned within :data:`STAGED_GRACE_S` is spared whether or not a version
still refers to it, so an ``rm`` or a prune racing a profile never pulls a model from
under the load that follows its staging. Unpinned blobs that no version refers to go at
once when a version was just removed, else once :data:`STAGED_GRACE_S` old.
"""

from __future__ import annotations

import posixpath
import stat
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import DeployError
from edgeship.deploy.device_files import Entry
from edgeship.deploy.layout import PART_SUFFIX, is_blob_name

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore

__all__ = ["DIRECTORIES", "PART_KEEP_S", "STAGED_GRACE_S", "UPLOAD_PART", "Housekeeping"]

STAGED_GRACE_S = 600.0
PART_KEEP_S = 24 * 3600.0
UPLOAD_PART = ".upload.part"
DIRECTORIES = ("blobs", "models", "pins", "runtime", "tmp")


class Housekeeping:
    """Clearing and collecting under one store's root (call with its lock held, except
    :meth:`pin` and :meth:`add_pin`, which any staging may call)."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store
        self.layout = store.layout
        self.files = store.files

    # -- ROOT/tmp ---------------------------------------------------------------------------

    def check_tmp(self) -> bool:
        """Whether ROOT/tmp exists as a real directory; a link or a file there is refused."""
        tmp = self.files.real(self.layout.path("tmp"))
        try:
            mode = self.files.lstat(tmp).mode
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(mode):
            label = self.store.label
            raise DeployError(
                f"{label}: {tmp} is not a directory; edgeship keeps its partial uploads there "
                f"and will not clear it: remove it (rm {tmp}) and retry",
                target=label,
            )
        return True

    def clear_tmp(self, now: float) -> None:
        """Remove our dead partial entries from ROOT/tmp (see the module docstring), once
        the directories edgeship keeps its entries in are known to be no links: a locked
        operation is refused before it changes anything, not half-way."""
        for directory in DIRECTORIES:
            self.files.real(self.layout.path(directory))
        if not self.check_tmp():
            return
        for entry in self.files.listdir(self.layout.path("tmp")):
            if not entry.name.endswith(PART_SUFFIX) or not _ours(entry):
                continue
            if entry.name.endswith(UPLOAD_PART) and entry.stat.mtime > now - PART_KEEP_S:
                continue  # a retry may resume it
            self.files.remove_tree(self.layout.path("tmp", entry.name))

    def upload_part(self, dest: str) -> str:
        """Where the upload of ``dest`` is written before its rename: the same name for
        every try, so a retry finds what an interrupted one left."""
        return self.layout.path("tmp", posixpath.basename(dest) + UPLOAD_PART)

    # -- pins -------------------------------------------------------------------------------

    def _pin_path(self, blob: str) -> str:
        return self.layout.path("pins", posixpath.basename(blob))

    def pin(self, blob: str) -> bool:
        """Mark ``blob`` as staged now; False when it has no pin yet."""
        try:
            self.files.touch(self._pin_path(blob))
            return True
        except OSError:
            return False

    def add_pin(self, blob: str) -> None:
        self.files.makedirs("pins")
        self.files.write_file(self._pin_path(blob), b"")

    def unpin(self, blob: str) -> None:
        self.files.remove(self._pin_path(blob))

    # -- blobs ------------------------------------------------------------------------------

    def collect_blobs(self, referenced: set[Any], released: set[Any], now: float) -> None:
        """Remove blobs no version refers to (``referenced``: digests still in use) and no
        profile staged lately: at once those of the ``released`` (just removed) versions,
        others once unused for :data:`STAGED_GRACE_S`; then pins left without a blob."""
        listed = self.files.listdir(self.layout.path("pins"))
        pins = {p.name: p.stat.mtime for p in listed if is_blob_name(p.name) and _ours(p)}
        present = set()
        for entry in self.files.listdir(self.layout.path("blobs")):
            present.add(entry.name)
            sha = entry.name.split(".")[0]
            if not is_blob_name(entry.name) or not _ours(entry):
                continue
            if sha in referenced or pins.get(entry.name, 0) >= now - STAGED_GRACE_S:
                continue
            if sha in released or entry.stat.mtime < now - STAGED_GRACE_S:
                self.unpin(entry.name)
                self.files.remove_tree(self.layout.path("blobs", entry.name))
                present.discard(entry.name)
        for name, mtime in pins.items():
            if name not in present and mtime < now - STAGED_GRACE_S:
                self.unpin(name)


def _ours(entry: Entry) -> bool:
    """Whether an entry could be one edgeship made: a file or a directory, not a link."""
    return stat.S_ISREG(entry.stat.mode) or stat.S_ISDIR(entry.stat.mode)
