"""A device's deploy root: upload, verify, activate, over any :class:`.DeviceFiles`.

Guarantees: a blob is hash-verified *on the device* before any version points to it;
``current`` changes only by one atomic rename; a failed or interrupted deploy leaves the
active version as it was; a lock on the device serialises concurrent deploys; nothing
outside the root is read, written or removed, and no link under it is followed
(:mod:`.contained`, which every file operation here goes through). The transport —
SFTP and exec for an SSH target, this machine's files for ``local`` — is the
:class:`.DeviceFiles` the store is given (:mod:`.device_files`).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.core.errors import DeployError, UsageError
from edgeship.core.hashing import file_sha256
from edgeship.core.progress import Progress
from edgeship.deploy import signing
from edgeship.deploy.checks import BlobChecks
from edgeship.deploy.contained import Contained
from edgeship.deploy.device_files import DeviceFiles
from edgeship.deploy.files import MAIN_STEM, ModelFiles, model_files
from edgeship.deploy.gc import STAGED_GRACE_S, Housekeeping
from edgeship.deploy.health import HealthCheckFailed, HealthReport
from edgeship.deploy.install import Installer
from edgeship.deploy.layout import OWNED, Layout, validate_name, version_id, version_number
from edgeship.deploy.versions import FAILED, ModelVersions, Versions

__all__ = ["STAGED_GRACE_S", "DeployStore", "Deployment", "ModelVersions"]


@dataclass
class Deployment:
    name: str
    version: str
    sha256: str
    path: str
    uploaded: bool
    activated: bool
    repaired: bool = False
    """The active version's blob on the device no longer matched its sha256 (tampered,
    bit rot): it was sent again."""


class DeployStore:
    """Deployments under ``root`` (``~/`` or relative: from the user's home) on the
    device whose files are ``device``."""

    def __init__(
        self,
        device: DeviceFiles,
        root: str,
        keep: int = 3,
        progress: Progress | None = None,
        lock_timeout: float = 60.0,
        python: Callable[[], str] | None = None,
    ) -> None:
        if keep < 1:
            raise UsageError(f"keep must be at least 1 version, got {keep}")
        self.label = device.label
        self.layout = Layout(_absolute(root, device))
        self.files = Contained(device, self.layout.root)
        self.keep = keep
        self.progress = progress
        self.lock_timeout = lock_timeout
        self.python = python or _python3
        """The device's Python, for the checks that run there (signatures): asked when
        needed, since a target knows it only once it has read what setup recorded."""
        self._locked_at = 0.0  # the device's clock when we took the lock
        self._runtimes_checked: set[str] = set()
        self._holding = False  # this store holds the device's lock now
        self._private = False  # the root was found private, or made so (make_private)
        self.bytes_sent = 0
        """Bytes uploaded through this store, and bytes an upload found already on the
        device from an interrupted earlier try (resumed, not sent again)."""
        self.bytes_resumed = 0
        self.versions = Versions(self)
        self.checks = BlobChecks(self)
        self.installer = Installer(self)
        self.housekeeping = Housekeeping(self)

    @property
    def root(self) -> str:
        return self.layout.root

    # -- blobs ------------------------------------------------------------------------------

    def put_blob(
        self, local: Path | ModelFiles, sha256: str | None = None
    ) -> tuple[str, str, bool]:
        """Upload a model into the blob store unless there: (device path of the model file,
        its digest, uploaded). ``sha256``: the file's digest when the caller has it already;
        a :class:`ModelFiles` brings its companions' too (see :mod:`.files`)."""
        files = _model_files(local, sha256)
        blob = self._blob_path(files)
        # blobs are immutable once renamed into place: staging one needs no lock, only a
        # pin saying it is in use (see gc.py), set before it is used
        if self.housekeeping.pin(blob):
            return self._main_in(blob, files), files.digest, False
        if self.files.exists(blob):
            self.housekeeping.add_pin(blob)
            return self._main_in(blob, files), files.digest, False
        with self.locked():
            uploaded = self.ensure_blob(files, blob)
            self.housekeeping.add_pin(blob)
            return self._main_in(blob, files), files.digest, uploaded

    def _blob_path(self, files: ModelFiles) -> str:
        """ROOT/blobs/<sha256><suffix> for one file, ROOT/blobs/<digest> for several."""
        if files.multi_file:
            return self.layout.blob_dir(files.digest)
        return self.layout.blob(files.sha256, files.suffix)

    def _main_in(self, blob: str, files: ModelFiles) -> str:
        """The device path of the model's main file inside ``blob``."""
        return self.layout.inside(blob, files.main_name) if files.multi_file else blob

    def ensure_blob(self, files: ModelFiles, blob: str) -> bool:
        """Upload unless present (call with the lock held); True when bytes were sent."""
        if self.files.exists(blob):
            return False
        if files.multi_file:
            self.installer.install_dir(files, blob)
        else:
            self.installer.install(files.main, blob, files.sha256)
        return True

    def put_runtime(self, local: Path, digest: str) -> str:
        """The runtime zipapp under ROOT/runtime/, uploaded once per runtime version, and
        hashed on the device before its first use on this connection: one that does not
        match (tampered, corrupted) is replaced before it can run."""
        remote = self.layout.runtime(digest)
        if remote in self._runtimes_checked:
            return remote
        sha = file_sha256(local)
        if self.checks.device_sha256_or_none(remote) != sha:
            with self.locked():
                if self.checks.device_sha256_or_none(remote) != sha:
                    self.installer.install(local, remote, sha)
        self._runtimes_checked.add(remote)
        return remote

    def device_sha256(self, path: str) -> str:
        return self.checks.device_sha256(path)

    # -- deploy / activate ------------------------------------------------------------------

    def deploy(
        self,
        local: Path | ModelFiles,
        name: str | None = None,
        sha256: str | None = None,
        check: Callable[[str], HealthReport] | None = None,
        admit: Callable[[str], dict[str, Any]] | None = None,
    ) -> Deployment:
        """Upload (unless there), verify and activate a model as the next version of
        ``name`` (default: the file's stem). ``local``: a model file, or one described
        with its companions by :func:`.files.model_files`. ``check``: run on the model's
        device path before activation (see :mod:`.health`); a failed check records the
        version as failed and raises :class:`.health.HealthCheckFailed`. ``admit``: run
        on the blob's device path before that (see :mod:`.signing`): raises to refuse the
        model, else returns what the version's meta.json records of it; without it, a
        device that trusts signed releases only refuses the model (see :mod:`.signing`)."""
        main = local.main if isinstance(local, ModelFiles) else local
        name = validate_name(name or main.stem)
        if not main.is_file():
            raise UsageError(f"{main}: no such model file")
        files = _model_files(local, sha256)
        blob, sha = self._blob_path(files), files.digest
        self.make_private()
        # already active: a few SFTP reads say so, with no lock (a device process) taken
        unchanged = self._unchanged(name, blob, sha, files)
        if unchanged is not None:
            return unchanged
        with self.locked():
            uploaded = self.ensure_blob(files, blob)
            # another deploy may have made it so meanwhile; not when we just sent the blob
            # (a fresh blob can carry the recorded whole-second mtime: it must be recorded)
            unchanged = None if uploaded else self._unchanged(name, blob, sha, files)
            if unchanged is None:
                unchanged = self._repair_active(name, files, blob, uploaded)
            if unchanged is not None:
                return unchanged
            if not uploaded:
                self.checks.verify(blob, sha, files.listing() if files.multi_file else None)
            admitted = admit(blob) if admit is not None else signing.admit(self, name, blob, None)
            health = check(self._main_in(blob, files)) if check is not None else None
            version = self.versions.create(name, files, blob, {**admitted, **_health_meta(health)})
            if health is not None and not health.ok:
                self._prune(name)
                active = self.active_version(name)
                raise HealthCheckFailed(self.label, name, version, active, health)
            self._activate(name, version)
            self._prune(name)
            return Deployment(name, version, sha, self._model_path(name, version), uploaded, True)

    def _unchanged(self, name: str, blob: str, sha: str, files: ModelFiles) -> Deployment | None:
        """The active version of ``name`` if it is already ``sha`` with its blob in place,
        its size and mtime as recorded when deployed (``current`` changes by one rename:
        what it points to is a consistent answer)."""
        active = self.active_version(name)
        meta = self._meta(name, active) if active else {}
        if not active or meta.get("sha256") != sha:
            return None
        try:
            if self.versions.blob_stat(blob, files) != meta.get("blob_stat"):
                return None  # changed, missing, or deployed before stats were recorded
        except OSError:
            return None
        return Deployment(name, active, sha, self._model_path(name, active), False, False)

    def _repair_active(
        self, name: str, files: ModelFiles, blob: str, uploaded: bool
    ) -> Deployment | None:
        """The active version of ``name`` if it is this model but its blob was not as
        recorded (call with the lock held): re-checked, and repaired if it must be."""
        active = self.active_version(name)
        meta = self._meta(name, active) if active else {}
        if not active or meta.get("sha256") != files.digest:
            return None
        repaired = self.checks.recheck(files, blob, name, active, meta, uploaded)
        path = self._model_path(name, active)
        return Deployment(name, active, files.digest, path, repaired, False, repaired)

    def _activate(self, name: str, version: str) -> None:
        """Point ``current`` at ``version`` with one rename: readers see old or new, never none."""
        current = self.layout.current(name)
        staged = f"{current}.{os.getpid()}.new"
        self.files.remove(staged)
        try:
            self.files.symlink(posixpath.join("versions", version), staged)
            self.files.rename(staged, current)
        except BaseException:
            self.files.remove(staged)
            raise

    def _prune(self, name: str) -> None:
        """Keep the active version and the ``keep`` newest others, remove ghosts (see
        versions.py); drop blobs no longer used (see gc.py)."""
        doomed, released = self.versions.doomed(name, self.active_version(name), self.keep)
        for version in doomed:
            self.files.remove_tree(self.layout.version_dir(name, version))
        if doomed:
            self._collect_blobs(released)

    def _collect_blobs(self, released: set[Any]) -> None:
        referenced = {m.get("sha256") for n in self.names() for m in self._all_meta(n)}
        self.housekeeping.collect_blobs(referenced, released, self._locked_at)

    # -- queries and other verbs ------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.files.names(self.layout.path("models")))

    def active_version(self, name: str) -> str | None:
        """The version ``current`` points to (None: no link); a link that points anywhere
        but one of the deployment's versions is refused, never followed."""
        current = self.layout.current(name)
        try:
            link = self.files.readlink(current)
        except OSError:
            return None
        version = posixpath.basename(link)
        if link != posixpath.join("versions", version) or version_number(version) is None:
            raise self.files.refuse_link(current, "edgeship points it only at its versions/")
        return version

    def active_path(self, name: str) -> str:
        version = self.active_version(name)
        if not version:
            raise DeployError(
                f"{self.label}: no model named {name!r} is deployed", target=self.label
            )
        return self._model_path(name, version)

    def describe(self, name: str) -> ModelVersions:
        return self.versions.describe(name, self.active_version(name))

    def rollback(self, name: str, to: str | None = None) -> Deployment:
        """Activate ``to`` (default: the newest version older than the active one); on a
        device that trusts signed releases only, once its signature checks out there."""
        validate_name(name)
        with self.locked():
            active = self.active_version(name)
            listing = self.versions.listing(name)
            numbers = listing.usable()
            target = to or _previous(numbers, active)
            why = listing.unusable(target)
            if why:
                raise DeployError(f"{self.label}: {name}: {target} {why}", target=self.label)
            if target is None or version_number(target) not in numbers:
                known = ", ".join(version_id(n) for n in numbers) or "none"
                raise DeployError(
                    f"{self.label}: {name}: no version to roll back to "
                    f"(have: {known}; active: {active})",
                    target=self.label,
                )
            meta = listing.metas[version_number(target) or 0]
            self.checks.verify(
                self.layout.path("blobs", meta["blob"]), meta["sha256"], meta.get("files")
            )
            signing.readmit(self, name, target, meta)
            self._activate(name, target)
            return Deployment(
                name, target, meta["sha256"], self._model_path(name, target), False, True
            )

    def remove(self, name: str) -> None:
        with self.locked():
            if not self.files.exists(self.layout.model_dir(name)):
                raise DeployError(
                    f"{self.label}: no model named {name!r} is deployed", target=self.label
                )
            released = {m.get("sha256") for m in self._all_meta(name)}
            self.files.remove_tree(self.layout.model_dir(name))
            self._collect_blobs(released)

    # -- lock ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ROOT/lock for the block (see :mod:`.lock`), and clear partial uploads of
        dead deploys. Re-entrant: a health check under a deploy's lock may install the
        runtime, which takes it too."""
        if self._holding:
            yield
            return
        self.files.makedirs()
        self.make_private()
        with self.files.lock(self.layout.path("lock"), self.lock_timeout) as now:
            self._locked_at = now
            self.housekeeping.clear_tmp(now)
            self._holding = True
            try:
                yield
            finally:
                self._holding = False

    def make_private(self) -> None:
        """Take other users' access away from what an older edgeship left readable under
        the root (see :meth:`.contained.Contained.make_private`); once per store."""
        if not self._private:
            self.files.make_private(OWNED)
            self._private = True

    # -- small helpers ----------------------------------------------------------------------

    def _model_path(self, name: str, version: str) -> str:
        """The version's model file: ``model.<ext>``, or ``model/<main>`` for a model of
        several files (its main file's name is in meta.json)."""
        vdir = self.layout.version_dir(name, version)
        models = [e for e in self.files.names(vdir) if e.startswith(MAIN_STEM + ".")]
        if models:
            return posixpath.join(vdir, models[0])
        main = self._meta(name, version).get("main")
        model = posixpath.join(vdir, MAIN_STEM)
        return self.layout.inside(model, main) if isinstance(main, str) else model

    def _meta(self, name: str, version: str) -> dict[str, Any]:
        return self.versions.meta(name, version)

    def _all_meta(self, name: str) -> list[dict[str, Any]]:
        """The meta of every complete version (ghosts left out)."""
        return [m for _, m in sorted(self.versions.listing(name).metas.items())]

    # -- files under the root, for callers outside deploy/ (settings, setup) ----------------

    def exists(self, path: str) -> bool:
        return self.files.exists(path)

    def makedirs(self, *parts: str) -> None:
        self.files.makedirs(*parts)

    def read_json(self, path: str) -> dict[str, Any]:
        return self.files.read_json(path)

    def write_file(self, path: str, data: bytes) -> None:
        self.files.write_file(path, data)


def _health_meta(health: HealthReport | None) -> dict[str, Any]:
    """What a version's meta.json says of its health check (nothing when none ran)."""
    if health is None:
        return {}
    return {"health": health.to_dict(), **({} if health.ok else {"state": FAILED})}


def _absolute(root: str, device: DeviceFiles) -> str:
    if posixpath.isabs(root):
        return root
    relative = root[2:] if root.startswith("~/") else root
    return posixpath.join(device.home(), relative)


def _python3() -> str:
    return "python3"


def _model_files(local: Path | ModelFiles, sha256: str | None) -> ModelFiles:
    return local if isinstance(local, ModelFiles) else model_files(local, sha256)


def _previous(numbers: list[int], active: str | None) -> str | None:
    current = version_number(active or "") or (max(numbers) + 1 if numbers else 0)
    older = [n for n in numbers if n < current]
    return version_id(max(older)) if older else None
