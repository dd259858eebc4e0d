"""The host-side digest is cached per file version, never served stale."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgeship.core.hashing import file_sha256


def test_digest_matches_hashlib_and_follows_edits(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"first")
    assert file_sha256(model) == hashlib.sha256(b"first").hexdigest()
    model.write_bytes(b"second, longer")
    assert file_sha256(model) == hashlib.sha256(b"second, longer").hexdigest()
    replacement = tmp_path / "new.onnx"
    replacement.write_bytes(b"second, LONGER")  # same size, another file moved over it
    os.replace(replacement, model)
    assert file_sha256(model) == hashlib.sha256(b"second, LONGER").hexdigest()
