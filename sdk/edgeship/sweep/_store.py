"""A sweep's directory: results written as they arrive, read back to resume.

::

    OUT/models/NAME.onnx        a made variant (.tflite where the method writes one)
    OUT/models/NAME.json        its compression report (edgeship.compression/2.3)
    OUT/variants/NAME.json      its record (edgeship.sweep-variant/1)
    OUT/cells/NAME@BOARD.json   one variant measured on one board (edgeship.sweep-cell/1)
    OUT/sweep.json, sweep.md, sweep.html   the report, rewritten at the end of every run

Every file is written whole or not at all (a temporary file renamed over it), so a sweep
killed at any moment leaves only complete records; an unreadable one counts as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TypeVar

from edgeship.core.errors import EdgeshipError, UsageError
from edgeship.core.hashing import file_sha256
from edgeship.sweep._report import CellRecord, VariantRecord
from edgeship_runtime.serde import JsonRecord

__all__ = ["R", "Store", "board_slug"]

R = TypeVar("R", bound=JsonRecord)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def board_slug(board: str) -> str:
    """A file-name-safe form of a board name; a name that had to change gets a short hash
    of the original, so ``pi@10.0.0.5`` and ``pi_10.0.0.5`` stay apart."""
    slug = _SAFE.sub("_", board)
    if slug == board:
        return board
    return f"{slug}-{hashlib.sha256(board.encode()).hexdigest()[:8]}"


class Store:
    """The records of one sweep under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--out {self.root}: exists and is not a directory")

    # -- paths ---------------------------------------------------------------

    def model_path(self, variant: str, suffix: str) -> Path:
        return self.root / "models" / f"{variant}{suffix}"

    def compression_report_path(self, variant: str) -> Path:
        return self.root / "models" / f"{variant}.json"

    def variant_path(self, variant: str) -> Path:
        return self.root / "variants" / f"{variant}.json"

    def cell_path(self, variant: str, board: str) -> Path:
        return self.root / "cells" / f"{variant}@{board_slug(board)}.json"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- reading ---------------------------------------------------------------

    def variant(self, name: str) -> VariantRecord | None:
        return _read(VariantRecord, self.variant_path(name))

    def cell(self, variant: str, board: str) -> CellRecord | None:
        record = _read(CellRecord, self.cell_path(variant, board))
        if record is None or (record.cell.variant, record.cell.board) != (variant, board):
            return None  # another board's file under a colliding name: not ours
        return record

    def model_sha256(self, record: VariantRecord | None) -> str:
        """The hash of the variant's model file as it is now ("" when it is missing)."""
        if record is None or not record.path:
            return ""
        path = self.root / record.path
        return file_sha256(path) if path.is_file() else ""

    # -- writing ---------------------------------------------------------------

    def write_variant(self, record: VariantRecord) -> Path:
        return self.write_text(self.variant_path(record.name), record.to_json() + "\n")

    def write_cell(self, record: CellRecord) -> Path:
        path = self.cell_path(record.cell.variant, record.cell.board)
        record.cell.file = self.relative(path)
        return self.write_text(path, record.to_json() + "\n")

    def write_text(self, path: Path, text: str) -> Path:
        return self.write_bytes(path, text.encode())

    def write_bytes(self, path: Path, data: bytes) -> Path:
        """Write ``path`` whole: a temporary file beside it, renamed over it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def _read(cls: type[R], path: Path) -> R | None:
    try:
        return cls.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, EdgeshipError):
        return None  # unreadable or of another schema: as if absent, done again
