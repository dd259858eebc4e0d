"""A device's deploy root, driven over SFTP and quoted exec: upload, verify, activate.

Guarantees: a blob is hash-verified *on the device* before any version points to it;
``current`` changes only by one atomic rename; a failed or interrupted deploy leaves the
active version as it was; a lock on the device serialises concurrent deploys. The bytes
travel by :mod:`.upload`, the lock is :mod:`.lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from ..errors import DeployError, UsageError
from ..hashing import file_sha256
from ..progress import Progress
from ..ssh.connection import Connection
from .files import MAIN_STEM, ModelFiles, model_files
from .gc import STAGED_GRACE_S, Housekeeping
from .layout import Layout, validate_name, version_id, version_number
from .lock import device_lock
from .upload import progress_from, send_verified
from .versions import FAILED, ModelVersions, Versions

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
    """Deployments under ``root`` on the device behind ``conn``."""

    def __init__(
        self,
        conn: Connection,
        root: str,
        keep: int = 3,
        progress: Progress | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        if keep < 1:
            raise UsageError(f"keep must be at least 1 version, got {keep}")
        self.conn = conn
        self.layout = Layout(self._absolute(root))
        self.keep = keep
        self.progress = progress
        self.lock_timeout = lock_timeout
        self._present: set[str] = set()  # directories known to exist on the device
        self._locked_at = 0.0  # the device's clock when we took the lock
        self.versions = Versions(self)
        self.housekeeping = Housekeeping(self)

    @property
    def root(self) -> str:
        return self.layout.root

    def _absolute(self, root: str) -> str:
        if posixpath.isabs(root):
            return root
        home = self.conn.sftp().normalize(".")
        relative = root[2:] if root.startswith("~/") else root
        return posixpath.join(home, relative)

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
        if self.exists(blob):
            self.housekeeping.add_pin(blob)
            return self._main_in(blob, files), files.digest, False
        with self.locked():
            uploaded = self._ensure_blob(files, blob)
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

    def _ensure_blob(self, files: ModelFiles, blob: str) -> bool:
        """Upload unless present (call with the lock held); True when bytes were sent."""
        if self.exists(blob):
            return False
        if files.multi_file:
            self._install_dir(files, blob)
        else:
            self._install(files.main, blob, files.sha256)
        return True

    def put_runtime(self, local: Path, digest: str) -> str:
        """The runtime zipapp under ROOT/runtime/, uploaded once per runtime version."""
        remote = self.layout.runtime(digest)
        if self.exists(remote):
            return remote
        with self.locked():
            self._install(local, remote, file_sha256(local))
        return remote

    def _install(self, local: Path, dest: str, sha: str) -> None:
        """Upload to ROOT/tmp, check the sha256 the device computed, then rename into place."""
        self.makedirs(*posixpath.relpath(posixpath.dirname(dest), self.root).split("/"))
        self.makedirs("tmp")
        part = self.layout.path("tmp", f"{posixpath.basename(dest)}.{os.getpid()}.part")
        with self._cleared_on_failure(part, self._remove):
            send_verified(self.conn, local, part, sha, self.root, self.progress)
        self.conn.sftp().posix_rename(part, dest)

    def _install_dir(self, files: ModelFiles, dest: str) -> None:
        """A multi-file model: every file into ROOT/tmp/<digest>.<pid>.part/ (the device
        hashing each as it writes), checked, then the directory renamed into place."""
        self.makedirs(*posixpath.relpath(posixpath.dirname(dest), self.root).split("/"))
        self.makedirs("tmp")
        part = self.layout.path("tmp", f"{posixpath.basename(dest)}.{os.getpid()}.part")
        total, done = files.total_bytes, 0
        with self._cleared_on_failure(part, self._rmtree):
            self.conn.sftp().mkdir(part)
            for staged in files.files():
                remote = self._remote_file(part, staged.name)
                report = progress_from(self.progress, done, total)
                need = total - done  # the first file asks room for all
                send_verified(
                    self.conn, staged.local, remote, staged.sha256, self.root, report, need
                )
                done += staged.size_bytes
        self.conn.sftp().posix_rename(part, dest)

    def _remote_file(self, directory: str, name: str) -> str:
        """``directory/name`` (``name`` may hold subdirectories: created here), inside."""
        path = self.layout.inside(directory, name)
        parents = name.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            with contextlib.suppress(OSError):  # made for an earlier file; else send fails
                self.conn.sftp().mkdir(self.layout.inside(directory, "/".join(parents[:depth])))
        return path

    @contextlib.contextmanager
    def _cleared_on_failure(self, part: str, clear: Callable[[str], None]) -> Iterator[None]:
        """Remove the partial upload ``part`` if the block fails, unless the connection is
        lost: then it would only wait for a reconnect to time out, and the next deploy
        clears ROOT/tmp under the lock anyway."""
        try:
            yield
        except Exception:
            if not self.conn.lost():
                clear(part)
            raise

    def device_sha256(self, path: str) -> str:
        out = self.conn.run(["sha256sum", "--", path]).stdout.decode()
        return out.split()[0] if out.strip() else ""

    # -- deploy / activate ------------------------------------------------------------------

    def deploy(
        self, local: Path | ModelFiles, name: str | None = None, sha256: str | None = None
    ) -> Deployment:
        """Upload (unless there), verify and activate a model as the next version of
        ``name`` (default: the file's stem). ``local``: a model file, or one described
        with its companions by :func:`.files.model_files`."""
        main = local.main if isinstance(local, ModelFiles) else local
        name = validate_name(name or main.stem)
        if not main.is_file():
            raise UsageError(f"{main}: no such model file")
        files = _model_files(local, sha256)
        blob, sha = self._blob_path(files), files.digest
        # already active: a few SFTP reads say so, with no lock (a device process) taken
        unchanged = self._unchanged(name, blob, sha, files)
        if unchanged is not None:
            return unchanged
        with self.locked():
            uploaded = self._ensure_blob(files, blob)
            unchanged = self._unchanged(name, blob, sha, files)  # another deploy made it so
            if unchanged is None:
                unchanged = self._repair_active(name, files, blob, uploaded)
            if unchanged is not None:
                return unchanged
            if not uploaded:
                self._verify(blob, sha, files.listing() if files.multi_file else None)
            version = self.versions.create(name, files, blob)
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
        repaired = self._recheck(files, blob, name, active, meta, uploaded)
        path = self._model_path(name, active)
        return Deployment(name, active, files.digest, path, repaired, False, repaired)

    def _recheck(
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
            seen = self.versions.blob_stat(blob, files)
        except OSError:
            seen = {}
        if not uploaded and seen and seen == meta.get("blob_stat"):
            return False
        listing = files.listing() if files.multi_file else None
        repaired = uploaded
        if not uploaded and not self._intact(blob, files.digest, listing):
            self._discard(blob, listing is not None)
            repaired = self._ensure_blob(files, blob)
        self.versions.update(name, version, {"blob_stat": self.versions.blob_stat(blob, files)})
        return repaired

    def _intact(self, blob: str, sha: str, listing: dict[str, str] | None) -> bool:
        if listing is None:
            return self.device_sha256(blob) == sha
        return self._device_listing(blob, listing) == listing

    def _discard(self, blob: str, directory: bool) -> None:
        """Remove a blob (and its pin first: a pin promises the blob is there)."""
        self.housekeeping.unpin(blob)
        (self._rmtree if directory else self._remove)(blob)

    def _verify(self, blob: str, sha: str, listing: dict[str, str] | None = None) -> None:
        """Check a stored blob against ``sha`` (a directory: each file against ``listing``,
        its {name: sha256}); a corrupted one is removed and refused."""
        if not self._intact(blob, sha, listing):
            self._discard(blob, listing is not None)
            raise DeployError(
                f"{self.conn.label}: stored blob {posixpath.basename(blob)} is corrupted "
                "(sha256 mismatch); removed it, nothing activated — deploy again to re-send",
                target=self.conn.label,
            )

    def _device_listing(self, directory: str, listing: dict[str, str]) -> dict[str, str]:
        """{name: sha256} of ``listing``'s files in ``directory`` as the device hashes them
        (a missing file is left out)."""
        paths = {self.layout.inside(directory, name): name for name in listing}
        out = self.conn.run(["sha256sum", "--", *paths], check=False).stdout.decode()
        seen = (line.split("  ", 1) for line in out.splitlines() if "  " in line)
        return {paths[path]: sha for sha, path in seen if path in paths}

    def _activate(self, name: str, version: str) -> None:
        """Point ``current`` at ``version`` with one rename: readers see old or new, never none."""
        current = self.layout.current(name)
        staged = f"{current}.{os.getpid()}.new"
        sftp = self.conn.sftp()
        with contextlib.suppress(OSError):
            sftp.remove(staged)
        sftp.symlink(posixpath.join("versions", version), staged)
        sftp.posix_rename(staged, current)

    def _prune(self, name: str) -> None:
        """Keep the active version and the ``keep`` newest others, remove ghosts (see
        versions.py); drop blobs no longer used (see gc.py)."""
        doomed, released = self.versions.doomed(name, self.active_version(name), self.keep)
        for version in doomed:
            self._rmtree(self.layout.version_dir(name, version))
        if doomed:
            self._collect_blobs(released)

    def _collect_blobs(self, released: set[Any]) -> None:
        referenced = {m.get("sha256") for n in self.names() for m in self._all_meta(n)}
        self.housekeeping.collect_blobs(referenced, released, self._locked_at)

    # -- queries and other verbs ------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._listdir(self.layout.path("models")))

    def active_version(self, name: str) -> str | None:
        try:
            return posixpath.basename(self.conn.sftp().readlink(self.layout.current(name)) or "")
        except OSError:
            return None

    def active_path(self, name: str) -> str:
        version = self.active_version(name)
        if not version:
            raise DeployError(
                f"{self.conn.label}: no model named {name!r} is deployed", target=self.conn.label
            )
        return self._model_path(name, version)

    def describe(self, name: str) -> ModelVersions:
        return self.versions.describe(name, self.active_version(name))

    def rollback(self, name: str, to: str | None = None) -> Deployment:
        """Activate ``to`` (default: the newest version older than the active one)."""
        validate_name(name)
        with self.locked():
            active = self.active_version(name)
            listing = self.versions.listing(name)
            numbers = listing.usable()
            target = to or _previous(numbers, active)
            self._refuse_unusable(name, target, listing.ghosts, listing.metas)
            if target is None or version_number(target) not in numbers:
                known = ", ".join(version_id(n) for n in numbers) or "none"
                raise DeployError(
                    f"{self.conn.label}: {name}: no version to roll back to "
                    f"(have: {known}; active: {active})",
                    target=self.conn.label,
                )
            meta = listing.metas[version_number(target) or 0]
            self._verify(self.layout.path("blobs", meta["blob"]), meta["sha256"], meta.get("files"))
            self._activate(name, target)
            return Deployment(
                name, target, meta["sha256"], self._model_path(name, target), False, True
            )

    def _refuse_unusable(
        self, name: str, target: str | None, ghosts: list[int], metas: dict[int, Any]
    ) -> None:
        """A clear error for rolling back to a ghost or a version that failed its check."""
        number = version_number(target or "")
        why = None
        if number in ghosts:
            why = "is incomplete (a deploy was interrupted before its meta.json); the next "
            why += "deploy removes it"
        elif number in metas and metas[number].get("state") == FAILED:
            reason = (metas[number].get("health") or {}).get("error") or "see `edgeship ls`"
            why = f"failed its health check and was never active ({reason})"
        if why:
            raise DeployError(f"{self.conn.label}: {name}: {target} {why}", target=self.conn.label)

    def remove(self, name: str) -> None:
        with self.locked():
            if not self.exists(self.layout.model_dir(name)):
                raise DeployError(
                    f"{self.conn.label}: no model named {name!r} is deployed",
                    target=self.conn.label,
                )
            released = {m.get("sha256") for m in self._all_meta(name)}
            self._rmtree(self.layout.model_dir(name))
            self._collect_blobs(released)

    # -- lock ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ROOT/lock for the block (see :mod:`.lock`), and clear partial uploads of
        dead deploys."""
        self.makedirs()
        with device_lock(self.conn, self.layout.path("lock"), self.lock_timeout, self.root) as now:
            self._locked_at = now
            self.housekeeping.clear_tmp(now)
            yield

    # -- small SFTP helpers ------------------------------------------------------------------

    def _model_path(self, name: str, version: str) -> str:
        """The version's model file: ``model.<ext>``, or ``model/<main>`` for a model of
        several files (its main file's name is in meta.json)."""
        vdir = self.layout.version_dir(name, version)
        models = [e for e in self._listdir(vdir) if e.startswith(MAIN_STEM + ".")]
        if models:
            return posixpath.join(vdir, models[0])
        main = self._meta(name, version).get("main")
        model = posixpath.join(vdir, MAIN_STEM)
        return self.layout.inside(model, main) if isinstance(main, str) else model

    def _versions(self, name: str) -> list[int]:
        return self.versions.numbers(name)

    def _meta(self, name: str, version: str) -> dict[str, Any]:
        return self.versions.meta(name, version)

    def _all_meta(self, name: str) -> list[dict[str, Any]]:
        """The meta of every complete version (ghosts left out)."""
        return [m for _, m in sorted(self.versions.listing(name).metas.items())]

    def _listdir(self, path: str) -> list[str]:
        try:
            return self.conn.sftp().listdir(path)
        except OSError:
            return []

    def _listdir_attr(self, path: str) -> list[paramiko.SFTPAttributes]:
        try:
            return self.conn.sftp().listdir_attr(path)
        except OSError:
            return []

    def exists(self, path: str) -> bool:
        try:
            self.conn.sftp().stat(path)
            return True
        except OSError:
            return False

    def makedirs(self, *parts: str) -> None:
        """``mkdir -p ROOT/parts...`` over SFTP; directories seen once are not asked again."""
        sftp = self.conn.sftp()
        for depth in range(len(parts) + 1):
            path = self.layout.path(*parts[:depth]) if depth else self.root
            if path in self._present:
                continue
            try:
                sftp.mkdir(path)
            except OSError as exc:
                if not self.exists(path):
                    raise DeployError(
                        f"{self.conn.label}: cannot create {path}: {exc}", target=self.conn.label
                    ) from None
            self._present.add(path)

    def _rmtree(self, path: str) -> None:
        self.conn.run(["rm", "-rf", "--", path])
        self._present = {p for p in self._present if p != path and not p.startswith(path + "/")}

    def _remove(self, path: str) -> None:
        with contextlib.suppress(OSError):
            self.conn.sftp().remove(path)

    def _remove_any(self, path: str, mode: int | None) -> None:
        """Remove a file, or a directory (a multi-file blob) with all in it."""
        if mode is not None and stat.S_ISDIR(mode):
            self._rmtree(path)
        else:
            self._remove(path)

    def read_json(self, path: str) -> dict[str, Any]:
        try:
            with self.conn.sftp().open(path, "rb") as f:
                data = json.loads(f.read().decode())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_file(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically: a reader sees the old file or the new."""
        part = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.part")
        sftp = self.conn.sftp()
        with sftp.open(part, "wb") as f:
            f.write(data)
        sftp.posix_rename(part, path)


def _model_files(local: Path | ModelFiles, sha256: str | None) -> ModelFiles:
    return local if isinstance(local, ModelFiles) else model_files(local, sha256)


def _previous(numbers: list[int], active: str | None) -> str | None:
    current = version_number(active or "") or (max(numbers) + 1 if numbers else 0)
    older = [n for n in numbers if n < current]
    return version_id(max(older)) if older else None
