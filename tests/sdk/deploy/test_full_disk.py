"""A full disk on the local transport: every write under the deploy root that fails for
want of space is one NoSpace line, and leaves nothing half-made."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from edgeship.deploy import DeployStore
from edgeship.deploy.local_files import LocalFiles
from edgeship.deploy.upload import NoSpace
from tests.models import add_model


def _full_after(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> None:
    """Writes of files named like ``names`` fail with ENOSPC, as on a full disk."""
    write = LocalFiles.write

    def failing(self: LocalFiles, path: str, data: bytes) -> None:
        if any(n in os.path.basename(path) for n in names):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        write(self, path, data)

    monkeypatch.setattr(LocalFiles, "write", failing)


def test_a_full_disk_when_only_the_version_files_are_left_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeployStore(LocalFiles(), str(tmp_path / "root"))
    first = store.deploy(add_model(tmp_path / "a.onnx"), "m")
    model = add_model(tmp_path / "b.onnx", width=5)
    store.put_blob(model)  # the blob is on the device already
    _full_after(monkeypatch, ("meta.json",))
    with pytest.raises(
        NoSpace, match=r"local: not enough space under .*root: need .* KiB, .* free"
    ):
        store.deploy(model, "m")
    assert store.describe("m").active == first.version
    assert [v["version"] for v in store.describe("m").versions] == [first.version]
    assert os.listdir(tmp_path / "root" / "tmp") == []  # no half-made version left
    assert not [p for p in (tmp_path / "root").rglob("*.part")]


def test_rollback_on_a_full_disk_is_one_line_and_keeps_the_active_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeployStore(LocalFiles(), str(tmp_path / "root"))
    store.deploy(add_model(tmp_path / "a.onnx"), "m")
    second = store.deploy(add_model(tmp_path / "b.onnx", width=5), "m")
    monkeypatch.setattr(LocalFiles, "free_bytes", lambda self, path: 100)

    def no_room(self: LocalFiles, target: str, path: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(LocalFiles, "symlink", no_room)
    with pytest.raises(NoSpace, match=r"need 4\.0 KiB, 0\.1 KiB free"):
        store.rollback("m")
    assert store.describe("m").active == second.version
    assert not [p for p in (tmp_path / "root" / "models" / "m").iterdir() if ".new" in p.name]


def test_another_write_failure_stays_what_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeployStore(LocalFiles(), str(tmp_path / "root"))

    def denied(self: LocalFiles, path: str, data: bytes) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(LocalFiles, "write", denied)
    with pytest.raises(PermissionError):
        store.write_file(store.layout.path("settings.json"), b"{}")
