"""A device's deploy root, driven over SFTP and quoted exec: upload, verify, activate.

Guarantees: a blob is hash-verified *on the device* before any version points to it;
``current`` changes only by one atomic rename; a failed or interrupted deploy leaves the
active version as it was; a lock on the device serialises concurrent deploys. The bytes
travel by :mod:`.upload`, the lock is :mod:`.lock`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import posixpath
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship_runtime.model import detect_format

from ..errors import DeployError, UsageError
from ..hashing import file_sha256
from ..progress import Progress
from ..ssh.connection import Connection
from .layout import Layout, validate_name, version_id, version_number
from .lock import device_lock
from .upload import UploadFailed, stream_to_device

# A blob no version refers to was staged by a profile or run, which loads it moments
# later; garbage collection spares such blobs this long after they were last staged.
STAGED_GRACE_S = 600.0


@dataclass
class Deployment:
    name: str
    version: str
    sha256: str
    path: str
    uploaded: bool
    activated: bool


@dataclass
class ModelVersions:
    name: str
    active: str | None
    versions: list[dict[str, Any]] = field(default_factory=list)


def _ext(fmt: str) -> str:
    return {"onnx": "onnx", "tflite": "tflite"}[fmt]


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

    def put_blob(self, local: Path, sha256: str | None = None) -> tuple[str, str, bool]:
        """Upload ``local`` into the blob store unless there; (device path, sha256, uploaded).
        ``sha256``: the file's digest when the caller has it already."""
        blob, sha = self._blob_path(local, sha256)
        if self._touch(blob):  # blobs are immutable once renamed into place: no lock needed
            return blob, sha, False
        with self.locked():
            return blob, sha, self._ensure_blob(local, blob, sha)

    def _touch(self, path: str) -> bool:
        """Set ``path``'s mtime to the device's now (it was just staged); False if absent."""
        try:
            self.conn.sftp().utime(path, None)
            return True
        except OSError:
            return False

    def _blob_path(self, local: Path, sha256: str | None = None) -> tuple[str, str]:
        fmt = detect_format(str(local))
        sha = sha256 or file_sha256(local)
        return self.layout.blob(sha, _ext(fmt)), sha

    def _ensure_blob(self, local: Path, blob: str, sha: str) -> bool:
        """Upload unless present (call with the lock held); True when bytes were sent."""
        if self.exists(blob):
            return False
        self._install(local, blob, sha)
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
        try:
            digest = stream_to_device(self.conn, local, part, self.root, self.progress)
        except UploadFailed:
            # over a lost connection it would only wait for a reconnect to time out; the
            # next deploy clears ROOT/tmp under the lock anyway
            if not self.conn.lost():
                self._remove(part)
            raise
        if digest != sha:
            self._remove(part)
            raise DeployError(
                f"{self.conn.label}: {local.name} arrived corrupted (sha256 mismatch on the "
                "device); nothing was activated",
                target=self.conn.label,
            )
        self.conn.sftp().posix_rename(part, dest)

    def device_sha256(self, path: str) -> str:
        out = self.conn.run(["sha256sum", "--", path]).stdout.decode()
        return out.split()[0] if out.strip() else ""

    # -- deploy / activate ------------------------------------------------------------------

    def deploy(self, local: Path, name: str | None = None, sha256: str | None = None) -> Deployment:
        name = validate_name(name or local.stem)
        if not local.is_file():
            raise UsageError(f"{local}: no such model file")
        blob, sha = self._blob_path(local, sha256)
        with self.locked():
            uploaded = self._ensure_blob(local, blob, sha)
            active = self.active_version(name)
            if active and self._meta(name, active).get("sha256") == sha:
                return Deployment(name, active, sha, self._model_path(name, active), False, False)
            if not uploaded:
                self._verify(blob, sha)
            version = self._new_version(name, local, blob, sha)
            self._activate(name, version)
            self._prune(name)
            return Deployment(name, version, sha, self._model_path(name, version), uploaded, True)

    def _verify(self, blob: str, sha: str) -> None:
        if self.device_sha256(blob) != sha:
            self._remove(blob)
            raise DeployError(
                f"{self.conn.label}: stored blob {posixpath.basename(blob)} is corrupted "
                "(sha256 mismatch); removed it, nothing activated — deploy again to re-send",
                target=self.conn.label,
            )

    def _new_version(self, name: str, local: Path, blob: str, sha: str) -> str:
        versions = self._versions(name)
        version = version_id((max(versions) if versions else 0) + 1)
        vdir = self.layout.version_dir(name, version)
        self.makedirs("models", name, "versions", version)
        link = posixpath.join(vdir, "model" + posixpath.splitext(blob)[1])
        self.conn.sftp().symlink(posixpath.relpath(blob, vdir), link)
        meta = {
            "name": name,
            "version": version,
            "sha256": sha,
            "blob": posixpath.basename(blob),
            "size_bytes": local.stat().st_size,
            "source": local.name,
            "from_host": socket.gethostname(),
            "deployed_at": _now(),
        }
        self.write_file(posixpath.join(vdir, "meta.json"), json.dumps(meta, indent=2).encode())
        return version

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
        """Keep the active version and the ``keep`` newest others; drop orphaned blobs."""
        active = self.active_version(name)
        numbers = sorted(self._versions(name), reverse=True)
        others = [version_id(n) for n in numbers if version_id(n) != active]
        doomed = others[self.keep :]
        released = {self._meta(name, version).get("sha256") for version in doomed}
        for version in doomed:
            self._rmtree(self.layout.version_dir(name, version))
        if doomed:
            self._collect_blobs(released)

    def _collect_blobs(self, released: set[Any]) -> None:
        """Remove blobs no version refers to: at once those of the ``released`` (removed)
        versions, others (staged for a profile) once unused for :data:`STAGED_GRACE_S`."""
        referenced = {m.get("sha256") for n in self.names() for m in self._all_meta(n)}
        blobs = self.layout.path("blobs")
        try:
            entries = self.conn.sftp().listdir_attr(blobs)
        except OSError:
            return
        for entry in entries:
            sha = entry.filename.split(".")[0]
            if sha in referenced:
                continue
            if sha in released or (entry.st_mtime or 0) < self._locked_at - STAGED_GRACE_S:
                self._remove(posixpath.join(blobs, entry.filename))

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
        return ModelVersions(name, self.active_version(name), self._all_meta(name))

    def rollback(self, name: str, to: str | None = None) -> Deployment:
        """Activate ``to`` (default: the newest version older than the active one)."""
        validate_name(name)
        with self.locked():
            active = self.active_version(name)
            numbers = sorted(self._versions(name))
            target = to or _previous(numbers, active)
            if target is None or version_number(target) not in numbers:
                known = ", ".join(version_id(n) for n in numbers) or "none"
                raise DeployError(
                    f"{self.conn.label}: {name}: no version to roll back to "
                    f"(have: {known}; active: {active})",
                    target=self.conn.label,
                )
            meta = self._meta(name, target)
            self._verify(self.layout.path("blobs", meta["blob"]), meta["sha256"])
            self._activate(name, target)
            return Deployment(
                name, target, meta["sha256"], self._model_path(name, target), False, True
            )

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
            for entry in self._listdir(self.layout.path("tmp")):
                self._remove(self.layout.path("tmp", entry))
            yield

    # -- small SFTP helpers ------------------------------------------------------------------

    def _model_path(self, name: str, version: str) -> str:
        vdir = self.layout.version_dir(name, version)
        models = [e for e in self._listdir(vdir) if e.startswith("model.")]
        return posixpath.join(vdir, models[0]) if models else posixpath.join(vdir, "model")

    def _versions(self, name: str) -> list[int]:
        entries = self._listdir(posixpath.join(self.layout.model_dir(name), "versions"))
        return [n for n in (version_number(e) for e in entries) if n is not None]

    def _meta(self, name: str, version: str) -> dict[str, Any]:
        return self.read_json(posixpath.join(self.layout.version_dir(name, version), "meta.json"))

    def _all_meta(self, name: str) -> list[dict[str, Any]]:
        return [self._meta(name, version_id(n)) for n in sorted(self._versions(name))]

    def _listdir(self, path: str) -> list[str]:
        try:
            return self.conn.sftp().listdir(path)
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

    def read_json(self, path: str) -> dict[str, Any]:
        try:
            with self.conn.sftp().open(path, "rb") as f:
                data = json.loads(f.read().decode())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_file(self, path: str, data: bytes) -> None:
        with self.conn.sftp().open(path, "wb") as f:
            f.write(data)


def _previous(numbers: list[int], active: str | None) -> str | None:
    current = version_number(active or "") or (max(numbers) + 1 if numbers else 0)
    older = [n for n in numbers if n < current]
    return version_id(max(older)) if older else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
