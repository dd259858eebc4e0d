"""Where produced model files are written: under a temporary name beside the output,
moved into place only when the result is accepted, so a failed run leaves no file that
looks usable at ``--out``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from edgeship_runtime.errors import UsageError

__all__ = ["staged"]


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` (same file system, so the final move is atomic)."""
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give the output file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
