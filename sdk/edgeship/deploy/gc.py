"""What a locked operation clears on the device: partial uploads, unreferenced blobs, pins.

ROOT/tmp holds only our own ``*.part`` entries, and clearing it never follows a link: a
ROOT/tmp that is itself a symbolic link is refused (clearing it would delete whatever it
points to), and an entry that is a link or is not named ``*.part`` is left alone. An
upload's part (``<blob>.upload.part``) is kept :data:`PART_KEEP_S` so that a retry can
resume it; any other part (a version being built, an older naming) goes at once.

A *pin*, ROOT/pins/<blob name>, says when a profile or run last staged that blob (its
mtime). A blob pinned within :data:`STAGED_GRACE_S` is spared whether or not a version
still refers to it, so an ``rm`` or a prune racing a profile never pulls a model from
under the load that follows its staging. Unpinned blobs that no version refers to go at
once when a version was just removed, else once :data:`STAGED_GRACE_S` old.
"""

from __future__ import annotations

import contextlib
import posixpath
import stat
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import DeployError

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore

STAGED_GRACE_S = 600.0
PART_KEEP_S = 24 * 3600.0
UPLOAD_PART = ".upload.part"


class Housekeeping:
    """Clearing and collecting under one store's root (call with its lock held, except
    :meth:`pin` and :meth:`add_pin`, which any staging may call)."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store
        self.layout = store.layout

    # -- ROOT/tmp ---------------------------------------------------------------------------

    def check_tmp(self) -> bool:
        """Whether ROOT/tmp exists as a real directory; a link or a file there is refused."""
        tmp = self.layout.path("tmp")
        try:
            seen = self.store.conn.sftp().lstat(tmp)
        except FileNotFoundError:
            return False
        mode = seen.st_mode or 0
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
            label = self.store.conn.label
            raise DeployError(
                f"{label}: {tmp} is {what}; edgeship keeps its partial uploads there and "
                f"will not follow or clear it: remove it (rm {tmp}) and retry",
                target=label,
            )
        return True

    def clear_tmp(self, now: float) -> None:
        """Remove our dead partial entries from ROOT/tmp (see the module docstring)."""
        if not self.check_tmp():
            return
        tmp = self.layout.path("tmp")
        for entry in self.store._listdir_attr(tmp):
            mode = entry.st_mode or 0
            if not entry.filename.endswith(".part") or stat.S_ISLNK(mode):
                continue
            if entry.filename.endswith(UPLOAD_PART) and (entry.st_mtime or 0) > now - PART_KEEP_S:
                continue  # a retry may resume it
            if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                self.store._remove_any(self.layout.path("tmp", entry.filename), mode)

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
            self.store.conn.sftp().utime(self._pin_path(blob), None)
            return True
        except OSError:
            return False

    def add_pin(self, blob: str) -> None:
        self.store.makedirs("pins")
        with self.store.conn.sftp().open(self._pin_path(blob), "w"):
            pass

    def unpin(self, blob: str) -> None:
        with contextlib.suppress(OSError):
            self.store.conn.sftp().remove(self._pin_path(blob))

    # -- blobs ------------------------------------------------------------------------------

    def collect_blobs(self, referenced: set[Any], released: set[Any], now: float) -> None:
        """Remove blobs no version refers to (``referenced``: digests still in use) and no
        profile staged lately: at once those of the ``released`` (just removed) versions,
        others once unused for :data:`STAGED_GRACE_S`; then pins left without a blob."""
        pins = {p.filename: p.st_mtime or 0 for p in self.store._listdir_attr(self._pins())}
        blobs = self.layout.path("blobs")
        present = set()
        for entry in self.store._listdir_attr(blobs):
            present.add(entry.filename)
            sha = entry.filename.split(".")[0]
            if sha in referenced or pins.get(entry.filename, 0) >= now - STAGED_GRACE_S:
                continue
            if sha in released or (entry.st_mtime or 0) < now - STAGED_GRACE_S:
                self.unpin(entry.filename)
                self.store._remove_any(posixpath.join(blobs, entry.filename), entry.st_mode)
                present.discard(entry.filename)
        for name, mtime in pins.items():
            if name not in present and mtime < now - STAGED_GRACE_S:
                self.unpin(name)

    def _pins(self) -> str:
        return self.layout.path("pins")
