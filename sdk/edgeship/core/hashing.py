"""The sha256 of a host file, computed once per version of the file.

A remote profile needs the model's digest twice (the stored tuning settings are keyed by
it, and the device's blob store is named by it); a 100 MB model costs ~0.1 s to hash.
The cache key is the file's identity and version (path, inode, size, mtime), so an edited
or replaced file is hashed again.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from edgeship_runtime.integrity import sha256_file

__all__ = ["file_sha256"]


def file_sha256(path: Path | str) -> str:
    st = os.stat(path)
    return _hash(os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _hash(path: str, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)
