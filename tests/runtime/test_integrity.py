"""The runtime's model check: sha256 with a cache keyed on the file's state."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from edgeship_runtime import integrity
from edgeship_runtime.errors import ModelError


@pytest.fixture(autouse=True)
def _fresh_memory() -> None:
    integrity._memory.clear()


def _root_with_blob(tmp_path: Path, data: bytes = b"model bytes") -> tuple[Path, Path, str]:
    root = tmp_path / "root"
    sha = hashlib.sha256(data).hexdigest()
    blob = root / "blobs" / f"{sha}.onnx"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    return root, blob, sha


def test_a_file_is_hashed_once_per_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, blob, sha = _root_with_blob(tmp_path)
    calls: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: calls.append(p) or real(p))
    assert integrity.sha256_cached(str(blob)) == sha
    assert integrity.sha256_cached(str(blob)) == sha
    assert len(calls) == 1
    cached = json.loads((root / "cache" / "sha256.json").read_text())
    assert cached[str(blob)][-1] == sha
    integrity._memory.clear()  # a new session: the deploy root's cache answers
    assert integrity.sha256_cached(str(blob)) == sha and len(calls) == 1
    # one byte changed, size and mtime put back: the ctime still moved
    st = blob.stat()
    blob.write_bytes(b"model bytez")
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert integrity.sha256_cached(str(blob)) != sha and len(calls) == 2


def test_a_changed_blob_is_refused_and_removed_with_its_pin(tmp_path: Path) -> None:
    root, blob, sha = _root_with_blob(tmp_path)
    pin = root / "pins" / blob.name
    pin.parent.mkdir()
    pin.touch()
    version = root / "models" / "m" / "versions" / "v0001"
    version.mkdir(parents=True)
    (version / "model.onnx").symlink_to(os.path.relpath(blob, version))
    blob.write_bytes(b"tampered!!!")
    with pytest.raises(ModelError, match=r"does not match its sha256 .*removed it: re-deploy"):
        integrity.verify(str(version / "model.onnx"), sha)
    assert not blob.exists() and not pin.exists()


def test_a_file_outside_a_deploy_root_is_refused_but_never_removed(tmp_path: Path) -> None:
    model = tmp_path / "mine.onnx"
    model.write_bytes(b"user's own file")
    with pytest.raises(ModelError, match="does not match its sha256"):
        integrity.verify(str(model), "0" * 64)
    assert model.exists()
    assert integrity.deploy_root(str(model)) is None


def test_companions_are_checked_too(tmp_path: Path) -> None:
    directory = tmp_path / "root" / "blobs" / "digest"
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(b"main")
    (directory / "w.bin").write_bytes(b"weights")
    main_sha = hashlib.sha256(b"main").hexdigest()
    good = {"w.bin": hashlib.sha256(b"weights").hexdigest()}
    integrity.verify(str(directory / "model.onnx"), main_sha, good)
    with pytest.raises(ModelError, match=r"w\.bin"):
        integrity.verify(str(directory / "model.onnx"), main_sha, {"w.bin": "0" * 64})
    assert not directory.exists()  # the whole blob directory goes
