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
from edgeship.core.errors import UsageError
from edgeship.deploy.files import model_files
from edgeship.deploy.signing import (
    SignatureRefused,
    admit,
    install_trust,
    keygen,
    sign_release,
    write_release,
)
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import cli
from tools.testbed import Testbed
from tools.testbed.pyenv import DEVICE_PYTHON

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


@pytest.fixture(scope="module")
def signing_python(testbed: Testbed) -> str:
    """A device Python that can check signatures: the testbed's device venv (numpy, the
    backends) with the system's ``cryptography`` as well, made in the device user's home.
    The testbed's own device venv has no ``cryptography``: it stands for a board whose
    Python cannot check signatures."""
    dev = testbed.devices[DEVICE]
    venv = dev.home / "signing-python"
    made = ["/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", str(venv)]
    testbed.run_as(dev, made, check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = testbed.run_as(dev, [str(venv / "bin" / "python"), "-c", where], check=True)
    device_venv = testbed.run_as(dev, [str(DEVICE_PYTHON), "-c", where], check=True)
    pth = Path(site.stdout.strip()) / "edgeship-testbed.pth"
    testbed.run_as(dev, ["tee", str(pth)], input=device_venv.stdout, check=True)
    return str(venv / "bin" / "python")


@pytest.fixture
def trusting(
    clean_testbed: Testbed, connect: ConnectOptions, keys: tuple[Path, Path], signing_python: str
) -> Iterator[SSHTarget]:
    """A device that trusts the release key (and nothing else while the test runs), worked
    on with a Python that can check signatures."""
    dev = clean_testbed.devices[DEVICE]
    target = open_target(dev.name, dataclasses.replace(connect, python=signing_python))
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


def test_rollback_to_a_version_without_a_valid_signature_is_refused(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    keys: tuple[Path, Path],
    zoo: Path,
    tmp_path: Path,
    signing_python: str,
) -> None:
    """A version deployed before the device trusted a key (or one whose meta.json claims a
    signature it does not have) is never made active again: not by rollback, not by the
    CLI's rollback, whose exit says so."""
    dev = clean_testbed.devices[DEVICE]
    options = dataclasses.replace(connect, python=signing_python)
    with open_target(dev.name, options) as target:
        assert isinstance(target, SSHTarget)
        store = target.store()
        unsigned = target.deploy(_model(zoo, tmp_path, "before-trust"), "rb")
        install_trust(store, keys[0].with_name("release.key.pub"))
        try:
            signed = target.deploy(
                _model(zoo, tmp_path, "after-trust"), "rb", signing=Signing(keys[0])
            )
            refused = f"activate rb {unsigned.version}: it carries no signature"
            with pytest.raises(SignatureRefused, match=refused):
                store.rollback("rb")
            # a forged meta.json: the newer version's manifest and signature, copied over
            meta_of = dev.deploy_path / "models" / "rb" / "versions"
            new_meta = json.loads((meta_of / signed.version / "meta.json").read_text())
            old_path = meta_of / unsigned.version / "meta.json"
            forged = {**json.loads(old_path.read_text()), "signature": new_meta["signature"]}
            clean_testbed.run_as(dev, ["tee", str(old_path)], input=json.dumps(forged), check=True)
            with pytest.raises(SignatureRefused, match="not the one signed"):
                store.rollback("rb", unsigned.version)
            done = cli(clean_testbed, "rollback", "rb", "--target", dev.name, "--python",
                       signing_python)  # fmt: skip
            assert done.returncode != 0
            assert f"refused to activate rb {unsigned.version}" in done.stderr
            assert store.describe("rb").active == signed.version
            # a signed version is rolled back to: checked, and made active
            again = target.deploy(_model(zoo, tmp_path, "third"), "rb", signing=Signing(keys[0]))
            assert store.rollback("rb").version == signed.version != again.version
        finally:
            clean_testbed.run_as(dev, ["rm", "-rf", str(dev.deploy_path / "trust")])
            store.remove("rb")


def test_signatures_are_checked_with_the_device_python_and_setup_trust_probes_it(
    clean_testbed: Testbed, connect: ConnectOptions, keys: tuple[Path, Path], zoo: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The testbed's device venv has no ``cryptography`` (the system python3 has): a check
    with the device's Python cannot run there, and says so; ``setup --trust`` finds it out
    before it installs the key, and fails."""
    dev = clean_testbed.devices[DEVICE]
    public = keys[0].with_name("release.key.pub")
    done = cli(clean_testbed, "setup", dev.name, "--python", str(DEVICE_PYTHON), "--trust",
               str(public))  # fmt: skip
    assert done.returncode != 0
    assert "no 'cryptography' module" in done.stderr and str(DEVICE_PYTHON) in done.stderr
    assert not (dev.deploy_path / "trust" / "ed25519.pub").exists()
    assert not (dev.deploy_path / "trust" / "ed25519.pub.new").exists()
    with open_target(dev.name, connect) as target:
        assert isinstance(target, SSHTarget) and target.python() == str(DEVICE_PYTHON)
        with pytest.raises(SignatureRefused, match="no 'cryptography' module"):
            install_trust(target.store(), public)
