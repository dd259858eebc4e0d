"""A deployment's versions: numbered directories, each created whole by one rename.

ROOT/models/<name>/versions/vNNNN/ holds the link to the blob and ``meta.json``. A
version is built in ROOT/tmp/ (link, then meta) and renamed into place, so it exists
with its meta or not at all; an interrupted deploy leaves only a ``*.part`` in ROOT/tmp,
which the next locked operation clears.

A version without ``meta.json`` (a *ghost*, as the non-atomic code before this left
after a crash or a full disk) is skipped by every reader with a note, is never rolled
back to, and is removed by the next deploy under the lock.

``meta.json`` also says what the blob looked like when deployed (``blob_stat``: size and
mtime of each file, the cheap check a re-deploy makes before trusting it) and the
version's ``state``: ``"ok"`` (absent in old versions), or ``"failed"`` when its health
check failed and it never became active (``health`` says why).
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import socket
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeship.deploy.files import MAIN_STEM, ModelFiles
from edgeship.deploy.layout import PART_SUFFIX, is_blob_name, version_id, version_number

if TYPE_CHECKING:
    from edgeship.deploy.store import DeployStore

__all__ = ["FAILED", "Listing", "ModelVersions", "Versions"]

FAILED = "failed"


@dataclass
class ModelVersions:
    """A deployment as ``ls`` shows it: the active version, every complete version's
    meta (oldest first), notes on what was skipped, and the versions whose files are
    gone from the device (``missing``: version -> what, in words)."""

    name: str
    active: str | None
    versions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Listing:
    """Every version of a deployment, by number: complete ones with their meta, ghosts."""

    metas: dict[int, dict[str, Any]]
    ghosts: list[int]

    def usable(self) -> list[int]:
        """Numbers of the complete versions that did not fail their health check."""
        return [n for n, m in sorted(self.metas.items()) if m.get("state") != FAILED]

    def unusable(self, version: str | None) -> str | None:
        """Why ``version`` cannot become active (a ghost, or a version that failed its
        health check), in words; None when it can, or does not exist."""
        number = version_number(version or "")
        if number in self.ghosts:
            return (
                "is incomplete (a deploy was interrupted before its meta.json); "
                "the next deploy removes it"
            )
        meta = self.metas.get(number or 0, {})
        if meta.get("state") == FAILED:
            reason = (meta.get("health") or {}).get("error") or "see `edgeship ls`"
            return f"failed its health check and was never active ({reason})"
        return None


class Versions:
    """The versions of the deployments under one store's root."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store
        self.layout = store.layout

    def numbers(self, name: str) -> list[int]:
        """The numbers of the deployment's versions; a version that is a link (not one
        edgeship made) is refused, never read or removed through."""
        files, versions = self.store.files, posixpath.join(self.layout.model_dir(name), "versions")
        numbers = []
        for entry in files.listdir(versions):
            number = version_number(entry.name)
            if number is not None and stat.S_ISLNK(entry.stat.mode):
                raise files.refuse_link(posixpath.join(versions, entry.name))
            if number is not None:
                numbers.append(number)
        return sorted(numbers)

    def meta(self, name: str, version: str) -> dict[str, Any]:
        """The version's meta.json ({} for a ghost or an unreadable one)."""
        path = posixpath.join(self.layout.version_dir(name, version), "meta.json")
        return self.store.files.read_json(path)

    def listing(self, name: str) -> Listing:
        metas, ghosts = {}, []
        for number in self.numbers(name):
            meta = self.meta(name, version_id(number))
            if meta.get("version") == version_id(number):
                metas[number] = meta
            else:
                ghosts.append(number)
        return Listing(metas, ghosts)

    def describe(self, name: str, active: str | None) -> ModelVersions:
        listing = self.listing(name)
        notes = [
            f"{version_id(n)} is incomplete (no meta.json: a deploy was interrupted); "
            "skipped, and removed by the next deploy"
            for n in listing.ghosts
        ]
        metas = [m for _, m in sorted(listing.metas.items())]
        missing = {m["version"]: gone for m in metas if (gone := self.missing(name, m))}
        return ModelVersions(name, active, metas, notes, missing)

    def missing(self, name: str, meta: dict[str, Any]) -> str | None:
        """What of a complete version's files is gone (``"model link missing"``, ``"blob
        missing"``), or None: its model link, its blob and (several files) the main file
        in it, each looked at with lstat, no link followed."""
        files, blob_name = self.store.files, str(meta.get("blob") or "")
        vdir = self.layout.version_dir(name, str(meta["version"]))
        # model.<ext> for one file, model for several (see create)
        if not files.exists(posixpath.join(vdir, MAIN_STEM + posixpath.splitext(blob_name)[1])):
            return "model link missing"
        if not is_blob_name(blob_name):
            return "blob missing"
        blob = self.layout.path("blobs", blob_name)
        main = meta.get("main")
        wanted = [blob, *([self.layout.inside(blob, main)] if isinstance(main, str) else [])]
        return None if all(files.exists(path) for path in wanted) else "blob missing"

    def create(
        self, name: str, files: ModelFiles, blob: str, extra: dict[str, Any] | None = None
    ) -> str:
        """A new version of ``name`` pointing at ``blob`` (call with the lock held): link
        and meta.json built in ROOT/tmp, then renamed into place in one step; removed
        again if any of that fails (a full disk), so no half-made version stays."""
        device = self.store.files
        version = version_id(max(self.numbers(name), default=0) + 1)
        device.makedirs("models", name, "versions")
        device.makedirs("tmp")
        part = self.layout.path("tmp", f"{name}.{version}.{os.getpid()}{PART_SUFFIX}")
        try:
            self._build(name, version, files, blob, part, extra)
        except BaseException:
            device.remove_tree(part)
            raise
        return version

    def _build(
        self,
        name: str,
        version: str,
        files: ModelFiles,
        blob: str,
        part: str,
        extra: dict[str, Any] | None,
    ) -> None:
        device = self.store.files
        final = self.layout.version_dir(name, version)
        device.mkdir(part)
        # one file: model.<ext> -> its blob; several: model/ -> their blob directory
        link = MAIN_STEM if files.multi_file else MAIN_STEM + files.suffix
        device.symlink(posixpath.relpath(blob, final), posixpath.join(part, link))
        meta: dict[str, Any] = {
            "name": name,
            "version": version,
            "sha256": files.digest,
            "blob": posixpath.basename(blob),
            "size_bytes": files.total_bytes,
            "source": files.main.name,
            "from_host": socket.gethostname(),
            "deployed_at": _now(),
            "blob_stat": self.blob_stat(blob, files),
            **(extra or {}),
        }
        if files.multi_file:
            meta["main"] = files.main_name
            meta["files"] = files.listing()
        device.write_file(posixpath.join(part, "meta.json"), _dump(meta))
        device.rename(part, final)

    def update(self, name: str, version: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the version's meta.json with ``changes`` (atomically)."""
        meta = {**self.meta(name, version), **changes}
        path = posixpath.join(self.layout.version_dir(name, version), "meta.json")
        self.store.files.write_file(path, _dump(meta))
        return meta

    def blob_stat(self, blob: str, files: ModelFiles) -> dict[str, list[int]]:
        """{file name in the blob ("" for a one-file blob): [size, mtime]} on the device."""
        device = self.store.files
        if not files.multi_file:
            st = device.lstat(blob)
            return {"": [st.size, st.mtime]}
        stats = {}
        for name in files.listing():
            st = device.lstat(self.layout.inside(blob, name))
            stats[name] = [st.size, st.mtime]
        return stats

    def doomed(self, name: str, active: str | None, keep: int) -> tuple[list[str], set[Any]]:
        """Versions to remove (ghosts, and complete ones beyond the ``keep`` newest that
        are not active), and the digests they released."""
        listing = self.listing(name)
        others = [n for n in sorted(listing.metas, reverse=True) if version_id(n) != active]
        old = others[keep:]
        ghosts = [n for n in listing.ghosts if version_id(n) != active]
        released = {listing.metas[n].get("sha256") for n in old}
        return [version_id(n) for n in sorted(old + ghosts)], released


def _dump(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, indent=2).encode()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
