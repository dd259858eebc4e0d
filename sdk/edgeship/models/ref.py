"""A reference to a model file in a report: its path, format, digest and size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeship.core.hashing import file_sha256

__all__ = ["ModelRef"]


@dataclass
class ModelRef:
    path: str
    format: str
    sha256: str | None = None
    size_bytes: int | None = None

    @classmethod
    def of_file(cls, path: Path, fmt: str) -> ModelRef:
        """A model file on this host, with its digest and size."""
        return cls(str(path), fmt, file_sha256(path), path.stat().st_size)
