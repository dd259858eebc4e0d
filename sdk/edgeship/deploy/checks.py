"""Is the device's copy still what was deployed? Host-side checks of stored blobs.

A blob is hashed on the device (``sha256sum``) when a deploy cannot trust it: one it did
not just upload (before a version points to it), one a rollback returns to, and the
active one when a re-deploy finds its size or mtime no longer as recorded (the cheap
check of :meth:`.store.DeployStore._unchanged`). A blob that does not match is removed
(its pin first) and sent again, or refused. The runtime makes the same check at every
load (its integrity.py).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import DeployError
from edgeship.deploy.files import ModelFiles

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore

__all__ = ["BlobChecks"]


class BlobChecks:
    """Checks of the blobs under one store's root."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store

    def device_sha256(self, path: str) -> str:
        files = self.store.files
        out = files.run(["sha256sum", "--", files.real(path)]).stdout.decode()
        return out.split()[0] if out.strip() else ""

    def device_sha256_or_none(self, path: str) -> str | None:
        files = self.store.files
        out = files.run(["sha256sum", "--", files.real(path)], check=False).stdout.decode()
        return out.split()[0] if out.strip() else None

    def recheck(
        self,
        files: ModelFiles,
        blob: str,
        name: str,
        version: str,
        meta: dict[str, Any],
        uploaded: bool,
    ) -> bool:
        """Re-deploying the active version: trust its blob while its size and mtime are
        what was recorded; else hash it on the device and send it again if it no longer
        matches (tampered, bit rot). True when bytes were sent (``uploaded``: the blob was
        missing and was just sent)."""
        try:
            seen = self.store.versions.blob_stat(blob, files)
        except OSError:
            seen = {}
        if not uploaded and seen and seen == meta.get("blob_stat"):
            return False
        listing = files.listing() if files.multi_file else None
        repaired = uploaded
        if not uploaded and not self.intact(blob, files.digest, listing):
            self.discard(blob)
            repaired = self.store.ensure_blob(files, blob)
        self.store.versions.update(
            name, version, {"blob_stat": self.store.versions.blob_stat(blob, files)}
        )
        return repaired

    def intact(self, blob: str, sha: str, listing: dict[str, str] | None) -> bool:
        if listing is None:
            return self.device_sha256(blob) == sha
        return self.device_listing(blob, listing) == listing

    def discard(self, blob: str) -> None:
        """Remove a blob (and its pin first: a pin promises the blob is there)."""
        self.store.housekeeping.unpin(blob)
        self.store.files.remove_tree(blob)

    def verify(self, blob: str, sha: str, listing: dict[str, str] | None = None) -> None:
        """Check a stored blob against ``sha`` (a directory: each file against ``listing``,
        its {name: sha256}); a corrupted one is removed and refused."""
        if not self.intact(blob, sha, listing):
            self.discard(blob)
            raise DeployError(
                f"{self.store.label}: stored blob {posixpath.basename(blob)} is corrupted "
                "(sha256 mismatch); removed it, nothing activated — deploy again to re-send",
                target=self.store.label,
            )

    def device_listing(self, directory: str, listing: dict[str, str]) -> dict[str, str]:
        """{name: sha256} of ``listing``'s files in ``directory`` as the device hashes them
        (a missing file is left out)."""
        files = self.store.files
        paths = {files.real(self.store.layout.inside(directory, name)): name for name in listing}
        out = files.run(["sha256sum", "--", *paths], check=False).stdout.decode()
        seen = (line.split("  ", 1) for line in out.splitlines() if "  " in line)
        return {paths[path]: sha for sha, path in seen if path in paths}
