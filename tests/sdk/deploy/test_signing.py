"""Release signing without a device: keys, manifests, and the device-side check run here
with this machine's python3 (which must then have ``cryptography``)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeship.core.config import Signing
from edgeship.core.errors import UsageError
from edgeship.deploy import DeployStore
from edgeship.deploy.files import model_files
from edgeship.deploy.local_files import LocalFiles
from edgeship.deploy.signing import (
    VERIFY_SCRIPT,
    SignatureRefused,
    SignedRelease,
    admit,
    install_trust,
    keygen,
    read_public,
    read_release,
    release_for,
    sign_release,
    write_release,
)
from tests.models import add_model
from tools.testbed import DEVICE_PYTHON


def _verify(
    python: str, tmp_path: Path, public: Path, blob: Path, name: str, release: SignedRelease,
    allow: bool = False,
) -> str:  # fmt: skip
    argv = [python, "-c", VERIFY_SCRIPT, str(public), str(tmp_path / "releases.json"),
            str(blob), name, "1" if allow else "0"]  # fmt: skip
    done = subprocess.run(argv, input=release.to_wire(), capture_output=True, timeout=60)
    return done.stdout.decode().strip()


@pytest.fixture
def python3() -> str:
    found = shutil.which("python3")
    if found is None or subprocess.run([found, "-c", "import cryptography"]).returncode != 0:
        pytest.skip("no python3 with cryptography here")
    return found


def test_a_signed_release_verifies_and_tampering_does_not(tmp_path: Path, python3: str) -> None:
    private, public = keygen(tmp_path / "k")
    model = add_model(tmp_path / "m.onnx")
    release = sign_release(private, "m", model_files(model), release=3)
    assert release.fields["release"] == 3 and release.fields["name"] == "m"
    assert _verify(python3, tmp_path, public, model, "m", release) == "ok 3"
    assert json.loads((tmp_path / "releases.json").read_text()) == {"m": 3}
    older = sign_release(private, "m", model_files(model), release=2)
    assert "downgrade" in _verify(python3, tmp_path, public, model, "m", older)
    assert _verify(python3, tmp_path, public, model, "m", older, allow=True) == "ok 2"
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(model.read_bytes() + b"\0")
    assert "not the one signed" in _verify(python3, tmp_path, public, changed, "m", release)
    forged = SignedRelease(release.manifest.replace(b'"release":3', b'"release":9'),
                           release.signature, release.key_id)  # fmt: skip
    assert "manifest was changed" in _verify(python3, tmp_path, public, model, "m", forged)


def test_a_device_python_without_cryptography_refuses_clearly(tmp_path: Path) -> None:
    if not DEVICE_PYTHON.exists():
        pytest.skip("no testbed device Python here")
    private, public = keygen(tmp_path / "k")
    model = add_model(tmp_path / "m.onnx")
    release = sign_release(private, "m", model_files(model))
    said = _verify(str(DEVICE_PYTHON), tmp_path, public, model, "m", release)
    assert said.startswith("refused") and "install python3-cryptography" in said


def _store(tmp_path: Path, python: str) -> DeployStore:
    return DeployStore(LocalFiles(), str(tmp_path / "root"), python=lambda: python)


def test_a_local_store_rolls_back_only_to_signed_versions_once_it_trusts_a_key(
    tmp_path: Path, python3: str
) -> None:
    private, public = keygen(tmp_path / "k")
    store = _store(tmp_path, python3)
    old = store.deploy(add_model(tmp_path / "old.onnx"), "m")  # before the device trusted
    install_trust(store, public)
    model = add_model(tmp_path / "new.onnx", width=5)
    release = sign_release(private, "m", model_files(model))
    with pytest.raises(SignatureRefused, match="trusts signed releases only"):
        store.deploy(model, "m")  # the store's own deploy keeps the policy too
    new = store.deploy(model, "m", admit=lambda blob: admit(store, "m", blob, release))
    with pytest.raises(SignatureRefused, match=f"refused to activate m {old.version}: it carries"):
        store.rollback("m")
    assert store.describe("m").active == new.version
    third = add_model(tmp_path / "third.onnx", width=6)
    again = sign_release(private, "m", model_files(third))
    store.deploy(third, "m", admit=lambda blob: admit(store, "m", blob, again))
    assert store.rollback("m").version == new.version  # signed: checked again, and taken


def test_trust_is_installed_only_where_the_device_python_can_check(tmp_path: Path) -> None:
    if not DEVICE_PYTHON.exists():
        pytest.skip("no testbed device Python here")
    _, public = keygen(tmp_path / "k")
    store = _store(tmp_path, str(DEVICE_PYTHON))
    with pytest.raises(SignatureRefused, match=r"cannot trust signed releases: .*'cryptography'"):
        install_trust(store, public)
    assert not (tmp_path / "root" / "trust" / "ed25519.pub").exists()
    assert not (tmp_path / "root" / "trust" / "ed25519.pub.new").exists()


def test_release_files_round_trip_and_bad_inputs_are_usage_errors(tmp_path: Path) -> None:
    private, public = keygen(tmp_path / "k", comment="ci")
    assert public.read_text().split()[2] == "ci" and len(read_public(public)) == 32
    model = add_model(tmp_path / "m.onnx")
    release = sign_release(private, "m", model_files(model))
    write_release(release, tmp_path / "m.release")
    again = read_release(tmp_path / "m.release")
    assert again.manifest == release.manifest and again.signature == release.signature
    (tmp_path / "bad.pub").write_text("ssh-ed25519 AAAA x\n")
    with pytest.raises(UsageError, match="not an edgeship public key"):
        read_public(tmp_path / "bad.pub")
    (tmp_path / "bad.release").write_text("{}")
    with pytest.raises(UsageError, match="not an edgeship release file"):
        read_release(tmp_path / "bad.release")
    with pytest.raises(UsageError, match=r"a key .* or a release file"):
        Signing()
    with pytest.raises(UsageError, match="no such file"):
        Signing(key=tmp_path / "missing")
    other = Signing(signature=tmp_path / "m.release")
    with pytest.raises(UsageError, match="signs 'm'"):
        release_for(other, "n", model_files(model))
    assert base64.b64decode(json.loads(release.to_wire())["signature"]) == release.signature
