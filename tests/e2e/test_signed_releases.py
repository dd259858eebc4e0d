"""Signed releases over real SSH: a device that trusts a key refuses unsigned, wrongly
signed, tampered and older releases, and the check runs on the device."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from edgeship.cli.main import main
from edgeship.core.config import ConnectOptions, Signing
from edgeship.deploy.files import model_files
from edgeship.deploy.signing import (
    SignatureRefused,
    admit,
    install_trust,
    keygen,
    sign_release,
    write_release,
)
from edgeship.core.errors import UsageError
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import cli
from tools.testbed import Testbed

DEVICE = 3


def _model(zoo: Path, tmp_path: Path, tag: str) -> Path:
    proto = onnx.load(str(zoo / "mlp.onnx"))
    proto.doc_string = f"{tag} {tmp_path.name}"
    path = tmp_path / f"{tag}.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """The release key pair and a stranger's private key."""
    release, _ = keygen(tmp_path / "release.key")
    stranger, _ = keygen(tmp_path / "stranger.key")
    return release, stranger


@pytest.fixture
def trusting(
    clean_testbed: Testbed, connect: ConnectOptions, keys: tuple[Path, Path]
) -> Iterator[SSHTarget]:
    """A device that trusts the release key (and nothing else while the test runs)."""
    dev = clean_testbed.devices[DEVICE]
    target = open_target(dev.name, connect)
    assert isinstance(target, SSHTarget)
    with target:
        install_trust(target.store(), keys[0].with_name("release.key.pub"))
        try:
            yield target
        finally:
            clean_testbed.run_as(dev, ["rm", "-rf", str(dev.deploy_path / "trust")])


def test_keygen_writes_a_private_key_only_we_can_read(tmp_path: Path) -> None:
    done = cli_local("keygen", str(tmp_path / "k"), "--json")
    found = json.loads(done)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert (tmp_path / "k.pub").read_text().startswith("edgeship-ed25519 ")
    assert len(found["key_id"]) == 16
    with pytest.raises(UsageError, match="never overwrites"):
        keygen(tmp_path / "k")


def cli_local(*args: str) -> str:
    """``edgeship ARGS`` in this process (commands that touch no device); its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def test_a_trusting_device_takes_only_what_its_key_signed(
    trusting: SSHTarget, keys: tuple[Path, Path], zoo: Path, tmp_path: Path
) -> None:
    release_key, stranger = keys
    with pytest.raises(SignatureRefused, match="trusts signed releases only"):
        trusting.deploy(_model(zoo, tmp_path, "unsigned"), "signed")
    with pytest.raises(SignatureRefused, match="not by the key this device trusts"):
        trusting.deploy(_model(zoo, tmp_path, "stranger"), "signed", signing=Signing(stranger))
    assert trusting.store().describe("signed").active is None
    done = trusting.deploy(_model(zoo, tmp_path, "good"), "signed", signing=Signing(release_key))
    assert done.activated
    meta = trusting.store().describe("signed").versions[-1]
    assert meta["signature"]["verified"] and meta["health"]["ok"]
    trusting.store().remove("signed")


def test_tampered_bytes_or_manifests_are_refused_on_the_device(
    trusting: SSHTarget, keys: tuple[Path, Path], zoo: Path, tmp_path: Path
) -> None:
    """What the host cannot see: the device hashes the bytes it holds, and checks the
    signature over the manifest it was given."""
    store = trusting.store()
    signed, other = _model(zoo, tmp_path, "signed"), _model(zoo, tmp_path, "swapped")
    release = sign_release(keys[0], "tamper", model_files(signed))
    blob, _, _ = store.put_blob(model_files(other))  # not the bytes that were signed
    with store.locked(), pytest.raises(SignatureRefused, match="not the one signed"):
        admit(store, "tamper", blob, release)
    forged = dataclasses.replace(
        release, manifest=release.manifest.replace(b'"tamper"', b'"tamperX"')
    )
    with store.locked(), pytest.raises(SignatureRefused, match="manifest was changed"):
        admit(store, "tamperX", blob, forged)
    with store.locked(), pytest.raises(SignatureRefused, match="signed as 'tamper'"):
        admit(store, "elsewhere", blob, release)


def test_an_older_release_is_a_downgrade_unless_allowed(
    trusting: SSHTarget, keys: tuple[Path, Path], zoo: Path, tmp_path: Path
) -> None:
    old, new = _model(zoo, tmp_path, "old"), _model(zoo, tmp_path, "new")
    for model, number in ((old, 5), (new, 7)):  # signed beforehand, as a CI would
        written = cli_local("sign", str(model), "--key", str(keys[0]), "--name", "down",
                            "--release", str(number))  # fmt: skip
        assert f"release {number}" in written
    newer = trusting.deploy(new, "down", signing=Signing(signature=Path(f"{new}.release")))
    assert newer.activated
    older = Signing(signature=Path(f"{old}.release"))
    with pytest.raises(SignatureRefused, match="downgrade: release 5 is older than 7"):
        trusting.deploy(old, "down", signing=older)
    allowed = dataclasses.replace(older, allow_downgrade=True)
    assert trusting.deploy(old, "down", signing=allowed).activated
    with pytest.raises(UsageError, match="signs 'down'"):  # a release file is for one model
        trusting.deploy(new, "down", signing=Signing(signature=Path(f"{old}.release")))
    trusting.store().remove("down")


def test_cli_deploy_sign_and_a_device_without_trust(
    clean_testbed: Testbed, keys: tuple[Path, Path], zoo: Path, tmp_path: Path
) -> None:
    """Without a trust key a device takes signed models too, and says it did not check."""
    dev = clean_testbed.devices[2].name
    model = _model(zoo, tmp_path, "cli-signed")
    done = cli(clean_testbed, "deploy", str(model), "--target", dev, "--sign", str(keys[0]))
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli(clean_testbed, "ls", dev, "--json").stdout)
    (entry,) = [e for e in listed if e["name"] == "cli-signed"]
    assert entry["versions"][-1]["signature"]["verified"] is False
    release = sign_release(keys[0], "cli-signed", model_files(model))
    write_release(release, tmp_path / "r.release")
    bad = cli(clean_testbed, "deploy", str(model), "--target", dev, "--allow-downgrade")
    assert bad.returncode == 2 and "--sign" in bad.stderr
    assert cli(clean_testbed, "rm", "cli-signed", "--target", dev).returncode == 0
