"""Build the device runtime as one zipapp file: ``python3 edgeship-runtime.pyz serve``.

The ``local`` target runs this very file, so what the tests exercise is what ships to
boards. Bundles are cached by a hash of the runtime's sources.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import zipapp
from pathlib import Path

import edgeship_runtime

__all__ = [
    "INTERPRETER",
    "RUNTIME_DIR",
    "build_bundle",
    "cache_dir",
    "ensure_bundle",
    "runtime_digest",
    "runtime_sources",
]

RUNTIME_DIR = Path(edgeship_runtime.__file__).resolve().parent
INTERPRETER = "/usr/bin/env python3"


def cache_dir() -> Path:
    """``$EDGESHIP_CACHE`` or ``~/.cache/edgeship``."""
    root = os.environ.get("EDGESHIP_CACHE") or Path.home() / ".cache" / "edgeship"
    return Path(root)


def runtime_sources() -> list[Path]:
    return sorted(p for p in RUNTIME_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def runtime_digest() -> str:
    """sha256 over the runtime's source paths and contents: the bundle's identity."""
    digest = hashlib.sha256()
    for path in runtime_sources():
        digest.update(path.relative_to(RUNTIME_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_bundle(out: Path) -> Path:
    """Write the zipapp to ``out`` (atomically) and return it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "src"
        target = staging / "edgeship_runtime"
        for path in runtime_sources():
            dest = target / path.relative_to(RUNTIME_DIR)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        # unique per thread too: several targets may bundle at once (fleets, sharding)
        partial = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        zipapp.create_archive(
            staging, partial, interpreter=INTERPRETER, main="edgeship_runtime.cli:_zipapp_main"
        )
        os.replace(partial, out)
    return out


def ensure_bundle() -> Path:
    """The cached bundle for the current runtime sources, built on first use."""
    path = cache_dir() / f"edgeship-runtime-{runtime_digest()[:16]}.pyz"
    if not path.exists():
        build_bundle(path)
    return path
