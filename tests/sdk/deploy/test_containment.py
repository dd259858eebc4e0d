"""Containment, tested once for both transports: a symbolic link under the deploy root is
refused, named, and nothing it points to is read, changed or removed; what edgeship makes
there is private (0700, 0600), and an older root is made so without touching anything else.

``local`` runs on a tmp directory; ``sftp`` against a real sshd (a one-device testbed:
needs root, iproute2 and openssh-server; skipped without them, failed in CI).
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.core.errors import DeployError, UsageError
from edgeship.deploy import DeployStore
from edgeship.deploy.contained import LinkRefused
from edgeship.deploy.layout import OWNED
from edgeship.deploy.local_files import LocalFiles
from edgeship.deploy.signing import install_trust, keygen
from edgeship.targets import SSHTarget, open_target
from edgeship.targets.bundle import ensure_bundle, runtime_digest


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


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of the root and of every entry under it that is no link."""
    seen = {".": stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            seen[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return seen


def _private(root: Path) -> dict[str, int]:
    """The entries under ``root`` that are not 0700 (directories) or 0600 (files)."""
    return {
        name: mode
        for name, mode in _modes(root).items()
        if mode != (0o700 if (root / name).is_dir() else 0o600)
    }


def test_everything_edgeship_makes_under_the_root_is_private(
    device: Device, add_onnx: Path, tmp_path: Path
) -> None:
    umask = os.umask(0)  # the mode given at creation keeps it private, not the umask
    try:
        device.store.deploy(add_onnx, "a")
        device.store.deploy(_variant(add_onnx, tmp_path, "b"), "a")
        device.store.rollback("a")
        device.store.put_runtime(ensure_bundle(), runtime_digest())
        _, public = keygen(tmp_path / "release.key")
        install_trust(device.store, public)
    finally:
        os.umask(umask)
    made = _modes(device.root)
    assert {"blobs", "models/a/versions/v0002/meta.json", "lock", "trust/ed25519.pub"} <= set(made)
    assert any(name.startswith("runtime/") for name in made)
    assert _private(device.root) == {}


def test_an_older_readable_root_is_made_private_once_and_nothing_else_is_touched(
    device: Device, add_onnx: Path
) -> None:
    """An older edgeship left the root readable to all: the next deploy takes that back,
    from what edgeship owns only, following no link to the user's files."""
    device.store.deploy(add_onnx, "a")
    names = _mine(device)
    root, mine = device.root, device.mine
    device.sh(
        f"chmod -R go+rX {root} && chmod 0755 {mine} && chmod 0644 {mine}/notes.txt && "
        f"ln -s {mine}/notes.txt {root}/blobs/notes && ln -s {mine} {root}/tmp/mine && "
        f"echo keep > {root}/README && chmod 0644 {root}/README"
    )
    assert _private(root)
    again = DeployStore(device.store.files.files, str(root), lock_timeout=5)
    assert again.deploy(add_onnx, "a").version == "v0001"
    assert _private(root) == {"README": 0o644}  # not edgeship's: left as it is
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
    assert stat.S_IMODE((mine / "notes.txt").stat().st_mode) == 0o644
    _survived(device, names)
    assert again.files.make_private(OWNED) == 0  # once private, nothing is walked again
