"""The deploy store on this machine's files (LocalFiles): no sshd, a tmp deploy root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.cli.main import main
from edgeship.core.errors import DeployError
from edgeship.deploy import DeployStore
from edgeship.deploy.local_files import LocalFiles


@pytest.fixture
def store(tmp_path: Path) -> DeployStore:
    return DeployStore(LocalFiles(), str(tmp_path / "root"), keep=2, lock_timeout=5.0)


def _variant(add_onnx: Path, tmp_path: Path, tag: str) -> Path:
    """``add.onnx`` with ``tag`` appended: another blob, the same model."""
    path = tmp_path / tag / "add.onnx"
    path.parent.mkdir()
    path.write_bytes(add_onnx.read_bytes() + tag.encode())
    return path


def test_deploy_redeploy_rollback_ls_rm(store: DeployStore, add_onnx: Path, tmp_path: Path) -> None:
    first = store.deploy(add_onnx, "add")
    assert (first.version, first.uploaded, first.activated) == ("v0001", True, True)
    assert Path(first.path).read_bytes() == add_onnx.read_bytes()

    again = store.deploy(add_onnx, "add")
    assert (again.version, again.uploaded, again.activated) == ("v0001", False, False)

    second = store.deploy(_variant(add_onnx, tmp_path, "b"), "add")
    assert second.version == "v0002"
    assert store.names() == ["add"]
    described = store.describe("add")
    assert described.active == "v0002"
    assert [m["version"] for m in described.versions] == ["v0001", "v0002"]

    back = store.rollback("add")
    assert back.version == "v0001"
    assert store.active_path("add") == back.path
    assert Path(back.path).read_bytes() == add_onnx.read_bytes()

    store.remove("add")
    assert store.names() == []
    assert list((Path(store.root) / "blobs").iterdir()) == []  # released blobs collected


def test_a_tampered_active_blob_is_sent_again(store: DeployStore, add_onnx: Path) -> None:
    deployed = store.deploy(add_onnx, "add")
    blob = (
        Path(store.root)
        / "blobs"
        / json.loads((Path(store.root) / "models/add/versions/v0001/meta.json").read_text())["blob"]
    )
    blob.write_bytes(b"tampered " + add_onnx.read_bytes())  # another size: the cheap check sees it

    repaired = store.deploy(add_onnx, "add")
    assert (repaired.version, repaired.repaired) == (deployed.version, True)
    assert blob.read_bytes() == add_onnx.read_bytes()


def test_a_corrupted_blob_is_not_rolled_back_to(
    store: DeployStore, add_onnx: Path, tmp_path: Path
) -> None:
    store.deploy(add_onnx, "add")
    store.deploy(_variant(add_onnx, tmp_path, "b"), "add")
    meta = json.loads((Path(store.root) / "models/add/versions/v0001/meta.json").read_text())
    (Path(store.root) / "blobs" / meta["blob"]).write_bytes(b"rot")
    with pytest.raises(DeployError, match="is corrupted"):
        store.rollback("add")
    assert store.active_version("add") == "v0002"


def test_cli_deploy_ls_rollback_on_local(
    add_onnx: Path, multi_input_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "root")
    local = ["--target", "local", "--deploy-root", root]

    def edgeship(*args: str) -> object:
        assert main([*args, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    edgeship("deploy", str(add_onnx), *local, "--name", "x")  # health-checked, here
    edgeship("deploy", str(multi_input_onnx), *local, "--name", "x", "--no-health-check")
    listed = json.dumps(edgeship("ls", "local", "--deploy-root", root))
    assert '"active": "v0002"' in listed and '"v0001"' in listed
    assert "v0001" in json.dumps(edgeship("rollback", "x", *local))
    assert DeployStore(LocalFiles(), root).active_version("x") == "v0001"


def test_ls_says_which_versions_files_are_gone(
    add_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version whose blob or model link was removed on the device is no ``ok`` row:
    ``ls`` says what is missing, in its table and in its JSON."""
    root = tmp_path / "root"
    store = DeployStore(LocalFiles(), str(root), keep=3, lock_timeout=5.0)
    store.deploy(add_onnx, "add")
    store.deploy(_variant(add_onnx, tmp_path, "b"), "add")
    store.deploy(_variant(add_onnx, tmp_path, "c"), "add")
    blob = json.loads((root / "models/add/versions/v0001/meta.json").read_text())["blob"]
    (root / "blobs" / blob).unlink()
    (root / "models/add/versions/v0002/model.onnx").unlink()
    assert store.describe("add").missing == {
        "v0001": "blob missing",
        "v0002": "model link missing",
    }
    assert main(["ls", "local", "--deploy-root", str(root), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["missing"] == {"v0001": "blob missing", "v0002": "model link missing"}
    assert main(["ls", "local", "--deploy-root", str(root)]) == 0
    rows = {line.split()[1].lstrip("*"): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["v0001"].endswith("blob missing") and rows["v0002"].endswith("link missing")
    assert rows["v0003"].endswith("ok")
