"""Where things live under a device's deploy root, and the rules that keep paths inside it.

ROOT/runtime/edgeship-runtime-<digest>.pyz      the runtime zipapp (hashed before use)
ROOT/blobs/<sha256>.<ext>                        model files, by content
ROOT/blobs/<digest>/model.<ext>, <companions>    a model of several files (deploy/files.py)
ROOT/models/<name>/versions/v0001/model.<ext>    symlink to its blob
ROOT/models/<name>/versions/v0001/model/         (several files) symlink to their directory
ROOT/models/<name>/versions/v0001/meta.json      what was deployed, when, from where, its
                                                 blob's size/mtime, health check, signature
ROOT/models/<name>/current -> versions/v0001     swapped atomically (rename)
ROOT/tmp/                                         partial uploads and versions being built
                                                 (our *.part only; never a link: gc.py)
ROOT/pins/<blob name>                             when a profile last staged that blob
ROOT/cache/sha256.json                            the runtime's hash cache (integrity.py)
ROOT/trust/ed25519.pub, releases.json             signed releases (deploy/signing.py)
ROOT/lock, ROOT/lock.holder                       the deploy flock and who holds it
                                                 (deploy/lock.py, deploy/orphans.py)
ROOT/config.json                                  device settings written by setup
ROOT/settings/                                    stored target settings (targets/settings.py)
ROOT/venv/, ROOT/wheelhouse/                      the venv setup makes, and its offline wheels

All of it is private to the device user: directories 0700, files 0600 (device_files.py);
a root an older edgeship left readable is tightened once (contained.py, make_private).
"""

from __future__ import annotations

import posixpath
import re

from edgeship.core.errors import UsageError

__all__ = [
    "OWNED",
    "PART_SUFFIX",
    "VERSION_PREFIX",
    "Layout",
    "is_blob_name",
    "validate_name",
    "version_id",
    "version_number",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# what edgeship names a blob: a sha256, with the model's suffix for a one-file model
_BLOB = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9][A-Za-z0-9._-]*)?$")
VERSION_PREFIX = "v"
PART_SUFFIX = ".part"
OWNED = (
    "blobs",
    "cache",
    "config.json",
    "lock",
    "lock.holder",
    "models",
    "pins",
    "runtime",
    "settings",
    "tmp",
    "trust",
    "venv",
    "wheelhouse",
)
"""The entries edgeship makes directly under the root (see the module docstring)."""


def validate_name(name: str) -> str:
    """A deployment name: letters, digits, ``._-``, at most 64, no leading dot, no ``..``."""
    if not _NAME.match(name) or ".." in name:
        raise UsageError(
            f"invalid model name {name!r}: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "(starting with a letter or digit); pass --name to choose one"
        )
    return name


def is_blob_name(name: str) -> bool:
    """Whether edgeship could have named an entry of ROOT/blobs (or ROOT/pins) so;
    housekeeping removes nothing else there."""
    return bool(_BLOB.match(name))


def version_id(number: int) -> str:
    return f"{VERSION_PREFIX}{number:04d}"


def version_number(version: str) -> int | None:
    digits = version[len(VERSION_PREFIX) :]
    return int(digits) if version.startswith(VERSION_PREFIX) and digits.isdigit() else None


class Layout:
    """Paths under one absolute deploy root; every path is checked to stay inside it."""

    def __init__(self, root: str) -> None:
        if not posixpath.isabs(root):
            raise UsageError(f"deploy root must be absolute on the device, got {root!r}")
        self.root = posixpath.normpath(root)

    def path(self, *parts: str) -> str:
        for part in parts:
            if not part or "/" in part or part in (".", "..") or not part.isprintable():
                raise UsageError(f"refusing remote path component {part!r}")
        joined = posixpath.normpath(posixpath.join(self.root, *parts))
        if not joined.startswith(self.root + "/"):
            raise UsageError(f"refusing remote path {joined!r}: outside {self.root}")
        return joined

    def inside(self, directory: str, name: str) -> str:
        """``directory/name`` where ``name`` is a relative POSIX path (a model's companion
        file may lie in a subdirectory); refused unless it stays inside both."""
        directory = posixpath.normpath(directory)
        relative = posixpath.relpath(directory, self.root)
        if relative == "." or relative.startswith("../"):
            raise UsageError(f"refusing remote path {directory!r}: outside {self.root}")
        return self.path(*relative.split("/"), *name.split("/"))

    def blob(self, sha256: str, suffix: str) -> str:
        """A one-file model's blob; ``suffix`` with its dot (``".onnx"``)."""
        return self.path("blobs", f"{sha256}{suffix}")

    def blob_dir(self, digest: str) -> str:
        """A multi-file model's blob: a directory holding all its files."""
        return self.path("blobs", digest)

    def model_dir(self, name: str) -> str:
        return self.path("models", validate_name(name))

    def version_dir(self, name: str, version: str) -> str:
        return self.path("models", validate_name(name), "versions", version)

    def current(self, name: str) -> str:
        return self.path("models", validate_name(name), "current")

    def runtime(self, digest: str) -> str:
        return self.path("runtime", f"edgeship-runtime-{digest[:16]}.pyz")
