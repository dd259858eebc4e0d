"""Is a model file still the bytes that were deployed? Its sha256, cheaply, and the check.

A file's sha256 is computed once per *state* of the file: the cache keys on its device,
inode, size, mtime and ctime (ns). Writing to it, truncating it, copying over it, or
writing and then putting the old mtime back (which sets the ctime to now: nobody can
set a ctime) all change the key, and the next look hashes the file again.

The cache lives in this process and, for a model under a deploy root
(``ROOT/blobs/...``), in ``ROOT/cache/sha256.json`` too, so a new runtime session does not
hash a large model it has seen before. It is a speed-up against accidents (bit rot, a
bad copy, a careless edit), not a defence against someone who can write as this user:
they could as well rewrite the cache, or the Python that runs us.

:func:`verify` compares a model (and its companion files) with what the host says it
deployed. A blob under a deploy root that does not match is removed (its pin first, see
the host's deploy/gc.py), so that the next ``edgeship deploy`` sends it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Dict, Mapping, Optional, Tuple

from .errors import ModelError

_CHUNK = 1 << 20
_MAX_ENTRIES = 512
Key = Tuple[int, int, int, int, int]

_memory: Dict[str, Tuple[Key, str]] = {}


def _key(path: str) -> Key:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def deploy_root(path: str) -> Optional[str]:
    """The deploy root a model file lies in (``ROOT/blobs/<blob>`` or a file inside a
    ``ROOT/blobs/<digest>/`` directory, links resolved), else None."""
    real = os.path.realpath(path)
    parent = os.path.dirname(real)
    for blobs in (parent, os.path.dirname(parent)):
        if os.path.basename(blobs) == "blobs":
            return os.path.dirname(blobs)
    return None


def sha256_cached(path: str) -> str:
    """The sha256 of the file at ``path``, hashed only when its state changed."""
    real = os.path.realpath(path)
    key = _key(real)
    seen = _memory.get(real)
    if seen is not None and seen[0] == key:
        return seen[1]
    root = deploy_root(real)
    stored = _load(root).get(real) if root else None
    if stored is not None and tuple(stored[:5]) == key:
        sha = str(stored[5])
    else:
        sha = sha256_file(real)
        if root:
            _store(root, real, key, sha)
    _memory[real] = (key, sha)
    return sha


def verify(path: str, sha256: str, companions: Optional[Mapping[str, str]] = None) -> None:
    """A ModelError unless ``path`` has ``sha256`` and each companion file (by its name
    relative to the model's directory) the sha256 given for it."""
    directory = os.path.dirname(path)
    expected = {path: sha256}
    expected.update({os.path.join(directory, n): s for n, s in (companions or {}).items()})
    for file, sha in expected.items():
        try:
            actual = sha256_cached(file)
        except OSError as exc:
            raise ModelError(f"cannot read {file}: {exc.strerror or exc}", path=file) from None
        if actual != sha:
            removed = _discard(path, whole_directory=bool(companions))
            what = "; removed it" if removed else ""
            raise ModelError(
                f"blob {os.path.basename(os.path.realpath(file))} on the device does not match "
                f"its sha256 (expected {sha[:12]}, found {actual[:12]}){what}: re-deploy to "
                "repair",
                path=file,
                expected_sha256=sha,
                actual_sha256=actual,
            )


def _discard(path: str, whole_directory: bool) -> bool:
    """Remove the corrupted blob behind ``path`` if it lies under a deploy root (a model
    of several files: its whole directory); its pin goes first."""
    real = os.path.realpath(path)
    root = deploy_root(real)
    if root is None:
        return False
    blob = os.path.dirname(real) if whole_directory else real
    if os.path.basename(os.path.dirname(blob)) != "blobs":
        return False
    try:
        pin = os.path.join(root, "pins", os.path.basename(blob))
        if os.path.lexists(pin):
            os.remove(pin)
        if os.path.isdir(blob) and not os.path.islink(blob):
            shutil.rmtree(blob)
        else:
            os.remove(blob)
    except OSError:
        return False
    _memory.pop(real, None)
    return True


def _cache_file(root: str) -> str:
    return os.path.join(root, "cache", "sha256.json")


def _load(root: str) -> Dict[str, list]:
    try:
        with open(_cache_file(root)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(root: str, path: str, key: Key, sha: str) -> None:
    """Add one entry (atomically: a concurrent session loses at most its own entry);
    entries of files that are gone are dropped."""
    entries = {p: e for p, e in _load(root).items() if os.path.exists(p)}
    entries[path] = [*key, sha]
    if len(entries) > _MAX_ENTRIES:
        entries = dict(list(entries.items())[-_MAX_ENTRIES:])
    target = _cache_file(root)
    partial = f"{target}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(partial, flags, 0o600), "w") as f:  # the user's alone
            json.dump(entries, f)
        os.replace(partial, target)
    except OSError:
        return  # a read-only or full deploy root: the next session hashes again
