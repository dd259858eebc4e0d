"""Containment, tested once for both transports: a symbolic link under the deploy root is
refused, named, and nothing it points to is read, changed or removed.

``local`` runs on a tmp directory; ``sftp`` against a real sshd (a one-device testbed:
needs root, iproute2 and openssh-server; skipped without them, failed in CI).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.core.errors import DeployError, UsageError
from edgeship.deploy import DeployStore
from edgeship.deploy.contained import LinkRefused
from edgeship.deploy.local_files import LocalFiles
from edgeship.targets import SSHTarget, open_target


@dataclass
class Device:
    """A deploy root to attack, a directory of the user's beside it, a shell as the user."""

    store: DeployStore
    root: Path
    mine: Path
    sh: Callable[[str], None]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tools.testbed import Testbed, missing_requirements

    missing = missing_requirements()
    if missing:
        reason = "SSH testbed unavailable: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    prefix = "ec" + secrets.token_hex(2)
    with Testbed(1, tmp_path_factory.mktemp("testbed"), prefix=prefix) as bed:
        yield bed


@pytest.fixture(params=["local", "sftp"])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    if request.param == "local":

        def sh(script: str) -> None:
            subprocess.run(["sh", "-c", script], check=True)

        root = tmp_path / "root"
        yield Device(
            DeployStore(LocalFiles(), str(root), lock_timeout=5), root, tmp_path / "mine", sh
        )
        return
    bed = request.getfixturevalue("testbed")
    dev = bed.devices[0]
    options = ConnectOptions(
        ssh_config=bed.ssh_config,
        targets_file=bed.targets,
        timeouts=Timeouts(connect=5, auth=5, command=60),
    )
    tag = secrets.token_hex(3)
    root, mine = dev.home / f"root-{tag}", dev.home / f"mine-{tag}"

    def as_user(script: str) -> None:
        bed.run_as(dev, ["sh", "-c", script], check=True)

    target = open_target(dev.name, options)
    assert isinstance(target, SSHTarget)
    with target:
        from edgeship.deploy.sftp_files import SftpFiles

        store = DeployStore(SftpFiles(target.connection), str(root), lock_timeout=5)
        yield Device(store, root, mine, as_user)
    as_user(f"rm -rf {root} {mine}")


OLD_BLOB = "ab" * 32 + ".onnx"  # named as edgeship names a blob, old: gc's first pick


def _mine(device: Device) -> set[str]:
    """Fill the user's directory; the names in it."""
    device.sh(
        f"mkdir -p {device.mine} && echo keep > {device.mine}/notes.txt && "
        f"echo keep > {device.mine}/{OLD_BLOB} && touch -d 2000-01-01 {device.mine}/{OLD_BLOB}"
    )
    return {"notes.txt", OLD_BLOB}


def _survived(device: Device, names: set[str]) -> None:
    assert {p.name for p in device.mine.iterdir()} == names
    assert all(p.read_text() == "keep\n" for p in device.mine.iterdir())


def _variant(add_onnx: Path, tmp_path: Path, tag: str) -> Path:
    path = tmp_path / tag / "add.onnx"
    path.parent.mkdir()
    path.write_bytes(add_onnx.read_bytes() + tag.encode())
    return path


def test_a_linked_blobs_dir_is_refused_and_every_user_file_survives(
    device: Device, add_onnx: Path, tmp_path: Path
) -> None:
    device.store.deploy(add_onnx, "a")
    names = _mine(device)
    blobs = device.root / "blobs"
    device.sh(f"rm -rf {blobs} && ln -s {device.mine} {blobs}")
    with pytest.raises(LinkRefused) as refused:
        device.store.deploy(_variant(add_onnx, tmp_path, "b"), "b")
    line = str(refused.value)
    assert f"{blobs} is a symbolic link (to {device.mine})" in line
    assert "remove it" in line and "--deploy-root" in line and "\n" not in line
    with pytest.raises(LinkRefused):
        device.store.remove("a")  # its blob would be collected: not through the link
    _survived(device, names)


def test_a_version_dir_that_is_a_link_is_refused(
    device: Device, add_onnx: Path, tmp_path: Path
) -> None:
    device.store.deploy(add_onnx, "a")
    names = _mine(device)
    device.sh(f"ln -s {device.mine} {device.root}/models/a/versions/v0002")
    for attempt in (
        lambda: device.store.deploy(_variant(add_onnx, tmp_path, "b"), "a"),
        lambda: device.store.describe("a"),
        lambda: device.store.rollback("a"),
    ):
        with pytest.raises(LinkRefused, match="versions/v0002 is a symbolic link"):
            attempt()
    _survived(device, names)


def test_a_current_that_points_outside_is_refused_never_followed(
    device: Device, add_onnx: Path, tmp_path: Path
) -> None:
    device.store.deploy(add_onnx, "a")
    names = _mine(device)
    current = device.root / "models" / "a" / "current"
    device.sh(f"ln -sfn {device.mine} {current}")
    with pytest.raises(LinkRefused, match="edgeship points it only at its versions/"):
        device.store.deploy(_variant(add_onnx, tmp_path, "b"), "a")
    with pytest.raises(DeployError):
        device.store.rollback("a")
    device.store.remove("a")  # what edgeship made goes; the link's target stays
    assert "a" not in device.store.names()
    _survived(device, names)


def test_paths_outside_the_root_are_refused(device: Device) -> None:
    files = device.store.files
    for path in ("/etc/passwd", f"{device.root}/../x", f"{device.root}/a//b", "blobs"):
        with pytest.raises(UsageError, match="refusing device path"):
            files.exists(path)
    with pytest.raises(UsageError, match="refusing device path"):
        files.remove_tree(str(device.root))  # the root itself is never removed
