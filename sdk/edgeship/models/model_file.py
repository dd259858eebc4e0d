"""A model file read once: its format, size, digest and (for ONNX) its parsed graph.

A compression, conversion or optimization looks at the same file from many places (the
method's registry, the data checks, the guard, the report); each used to detect the
format and parse the graph again. :meth:`ModelFile.of` hands back the same value for the
same version of a file (path, inode, size and mtime, as :mod:`edgeship.core.hashing`
keys digests), so each fact is computed once per file version, and a file written again
is read again.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.core.hashing import file_sha256
from edgeship_runtime.formats import detect_format

__all__ = ["ModelFile"]

_CACHED_FILES = 8
"""File versions kept; a parsed graph is as large as its file, so only a few."""
_CACHE: OrderedDict[tuple[str, int, int, int], ModelFile] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class ModelFile:
    """One version of a model file on this host. Build it with :meth:`of`.

    The digest and the graph are read on first use: hold a value only while the file
    stays as it is, and ask :meth:`of` again after writing it.
    """

    path: Path
    format: str
    size_bytes: int

    @classmethod
    def of(cls, path: Path | str) -> ModelFile:
        """The file at ``path`` as it is now: :class:`~edgeship.core.errors.ModelError`
        for a missing file or an unknown format, the cached value for an unchanged one."""
        try:
            st = os.stat(path)
        except OSError:
            detect_format(str(path))  # the one clear ModelError for a missing file
            raise
        key = (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)
        with _LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]
        found = cls(Path(path), detect_format(str(path)), st.st_size)
        with _LOCK:
            _CACHE[key] = found
            while len(_CACHE) > _CACHED_FILES:
                _CACHE.popitem(last=False)
        return found

    @functools.cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @functools.cached_property
    def graph(self) -> Any:
        """The parsed ONNX graph, shared by every reader of this file version: read it, never
        change it (a method that edits a graph loads its own with ``onnx_graph.load``)."""
        from edgeship.models import onnx_graph

        if self.format != "onnx":
            raise ValueError(f"{self.path} is {self.format}, not ONNX")
        return onnx_graph.load(self.path)
