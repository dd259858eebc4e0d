"""Deploy, versions, rollback, removal and hostile names, over real SSH."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import DeployError, ModelError, UsageError
from edgeship.targets import SSHTarget, open_target
from edgeship.targets.provision import setup_device
from tests import external_data
from tests.e2e.conftest import cli
from tests.sdk.test_imports import MEASURING
from tools.testbed import DEVICE_PYTHON, Testbed


def _current(testbed: Testbed, name: str) -> str:
    dev = testbed.devices[0]
    link = dev.deploy_path / "models" / name / "current"
    return testbed.run_as(dev, ["readlink", str(link)], check=True).stdout.strip()


def _fresh(zoo: Path, tmp_path: Path, model: str, tag: str = "") -> Path:
    """A zoo model with bytes no other test has sent (its doc string names the test):
    still a valid model, which deploy's health check loads and runs."""
    proto = onnx.load(str(zoo / model))
    proto.doc_string = f"{tmp_path.name} {tag}"
    fresh = tmp_path / f"{tag}{model}"
    onnx.save(proto, str(fresh))
    return fresh


def test_deploy_versions_rollback_and_rm(
    device_target: SSHTarget, clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    mlp, cnn = _fresh(zoo, tmp_path, "mlp.onnx"), _fresh(zoo, tmp_path, "cnn.onnx")
    first = device_target.deploy(mlp, "digits")
    assert first.uploaded and first.activated and first.version == "v0001"
    again = device_target.deploy(mlp, "digits")
    assert not again.uploaded and not again.activated and again.version == "v0001"
    second = device_target.deploy(cnn, "digits")
    assert second.version == "v0002" and _current(clean_testbed, "digits") == "versions/v0002"
    store = device_target.store()
    assert store.describe("digits").active == "v0002"
    back = store.rollback("digits")
    assert back.version == "v0001" and _current(clean_testbed, "digits") == "versions/v0001"
    # the active file is the verified blob of mlp.onnx
    dev = clean_testbed.devices[0]
    digest = clean_testbed.run_as(dev, ["sha256sum", back.path], check=True).stdout.split()[0]
    assert digest == first.sha256
    store.remove("digits")
    assert "digits" not in store.names()
    blobs = clean_testbed.run_as(dev, ["ls", str(dev.deploy_path / "blobs")]).stdout
    assert first.sha256 not in blobs and second.sha256 not in blobs


def test_old_versions_are_pruned_to_keep(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    options = ConnectOptions(
        ssh_config=connect.ssh_config,
        targets_file=connect.targets_file,
        timeouts=connect.timeouts,
        keep_versions=1,
    )
    with open_target(clean_testbed.devices[0].name, options) as target:
        assert isinstance(target, SSHTarget)
        for i in range(4):  # four different files: the model with a distinct doc string
            target.deploy(_fresh(zoo, tmp_path, "mlp.onnx", f"m{i}"), "pruned")
        versions = [m["version"] for m in target.store().describe("pruned").versions]
        assert versions == ["v0003", "v0004"]
        target.store().remove("pruned")


def test_concurrent_deploys_are_serialised_by_the_lock(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    errors: list[BaseException] = []

    def deploy(model: str) -> None:
        try:
            with open_target(clean_testbed.devices[0].name, connect) as target:
                assert isinstance(target, SSHTarget)
                target.deploy(zoo / model, "raced")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(m,)) for m in ("mlp.onnx", "cnn.onnx")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_target(clean_testbed.devices[0].name, connect) as target:
        assert isinstance(target, SSHTarget)
        described = target.store().describe("raced")
        assert [m["version"] for m in described.versions] == ["v0001", "v0002"]
        target.store().remove("raced")


@pytest.mark.parametrize(
    "name",
    [
        "my model",
        "it's",
        'say"hi"',
        "a;touch pwned",
        "$(touch pwned)",
        "../escape",
        "modèle",
        "-rf",
        ".hidden",
        "x" * 65,
    ],
)
def test_hostile_names_are_refused(device_target: SSHTarget, zoo: Path, name: str) -> None:
    with pytest.raises(UsageError, match="invalid model name"):
        device_target.deploy(zoo / "mlp.onnx", name)


def test_hostile_file_names_deploy_safely_under_a_chosen_name(
    device_target: SSHTarget, clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    hostile = tmp_path / "my model; $(touch pwned) 'x' ../é.onnx".replace("/", "_")
    shutil.copy(zoo / "mlp.onnx", hostile)
    with pytest.raises(UsageError, match="invalid model name"):
        device_target.deploy(hostile)  # the stem is not a valid name: say so
    done = device_target.deploy(hostile, "safe")
    report = device_target.profile(hostile)
    assert done.activated and report.latency_ms.n >= 100
    dev = clean_testbed.devices[0]
    found = clean_testbed.run_as(dev, ["find", str(dev.home), "-name", "pwned"]).stdout
    assert found == ""
    device_target.store().remove("safe")


def test_ls_says_a_version_whose_blob_is_gone_is_missing(
    device_target: SSHTarget, clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[0]
    first = device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx", "gone1"), "gone")
    device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx", "gone2"), "gone")
    blob = dev.deploy_path / "blobs" / f"{first.sha256}.onnx"
    clean_testbed.run_as(dev, ["rm", str(blob)], check=True)
    listed = json.loads(cli(clean_testbed, "ls", "--target", dev.name, "--json").stdout)
    (entry,) = [e for e in listed if e["name"] == "gone"]
    assert entry["missing"] == {"v0001": "blob missing"}
    table = cli(clean_testbed, "ls", "--target", dev.name).stdout.splitlines()
    rows = {line.split()[1]: line for line in table if line.startswith("gone ")}
    assert rows["v0001"].endswith("blob missing") and rows["*v0002"].endswith("ok")
    device_target.store().remove("gone")


def test_cli_deploy_ls_rollback_rm(clean_testbed: Testbed, zoo: Path) -> None:
    dev = clean_testbed.devices[1].name
    for model in ("mlp.onnx", "cnn.onnx"):
        done = cli(clean_testbed, "deploy", str(zoo / model), "--target", dev, "--name", "cli")
        assert done.returncode == 0, done.stderr
    listed = json.loads(cli(clean_testbed, "ls", "--target", dev, "--json").stdout)
    (entry,) = [e for e in listed if e["name"] == "cli"]
    assert entry["active"] == "v0002" and len(entry["versions"]) == 2
    done = cli(clean_testbed, "rollback", "cli", "--target", dev, "--to", "v0001", "--json")
    assert json.loads(done.stdout)["version"] == "v0001"
    done = cli(clean_testbed, "rollback", "cli", "--target", dev, "--to", "v0009")
    assert done.returncode == 1 and done.stderr.startswith("error:")
    assert "no version to roll back to" in done.stderr
    assert cli(clean_testbed, "rm", "cli", "--target", dev).returncode == 0
    done = cli(clean_testbed, "rm", "cli", "--target", dev)
    assert done.returncode == 1 and "no model named 'cli'" in done.stderr


def test_an_unchanged_cli_redeploy_imports_no_measuring_code(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an SSH re-deploy from the command line imports (PYTHONPROFILEIMPORTTIME lists
    every module on stderr): paramiko and the store, not numpy nor the measuring code."""
    dev = clean_testbed.devices[1].name
    deploy = ("deploy", str(_fresh(zoo, tmp_path, "mlp.onnx")), "--target", dev, "--name", "again")
    assert cli(clean_testbed, *deploy).returncode == 0
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    done = cli(clean_testbed, *deploy, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["activated"] is False  # unchanged: nothing sent or run
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[1].strip() for line in lines}
    assert {"paramiko", "edgeship.deploy.sftp_files", "edgeship.deploy.store"} <= imported
    assert not MEASURING & {*imported, *(m.partition(".")[0] for m in imported)}
    assert cli(clean_testbed, "rm", "again", "--target", dev).returncode == 0


def test_rollback_of_unknown_model_is_a_clear_error(device_target: SSHTarget) -> None:
    with pytest.raises(DeployError, match="no version to roll back to"):
        device_target.store().rollback("never-deployed")


def test_gc_spares_a_freshly_staged_blob_and_collects_a_stale_one(
    device_target: SSHTarget, clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    """A blob staged for a profile (no version refers to it) survives a concurrent rm's
    garbage collection while fresh, and goes at a later one once stale."""
    dev = clean_testbed.devices[0]
    blobs = dev.deploy_path / "blobs"

    def listing() -> set[str]:
        """Blobs other than those other tests left (a blob staged for their profiles is
        spared by their rm for the grace period)."""
        return set(clean_testbed.run_as(dev, ["ls", str(blobs)]).stdout.split())

    before = listing()
    staged = device_target.stage_model(_fresh(zoo, tmp_path, "cnn.onnx"))
    device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx"), "gc-a")
    device_target.store().remove("gc-a")  # collects gc-a's blob, spares the staged one
    assert listing() - before == {Path(staged).name}
    old = "@" + str(int(time.time()) - 3600)  # unused for an hour: past the grace period
    pin = dev.deploy_path / "pins" / Path(staged).name  # when it was last staged
    clean_testbed.run_as(dev, ["touch", "-d", old, staged, str(pin)], check=True)
    device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx"), "gc-b")
    device_target.store().remove("gc-b")
    assert listing() - before == set()


def _listing(testbed: Testbed, directory: Path) -> dict[str, str]:
    """{relative name: sha256} of every file under ``directory`` on the first device."""
    dev = testbed.devices[0]
    found = testbed.run_as(dev, ["find", str(directory), "-type", "f"], check=True).stdout
    files = sorted(found.split())
    sums = testbed.run_as(dev, ["sha256sum", "--", *files], check=True).stdout.splitlines()
    return {str(Path(p).relative_to(directory)): s for s, p in (x.split("  ", 1) for x in sums)}


def test_onnx_with_external_data_deploys_profiles_and_rolls_back(
    device_target: SSHTarget, clean_testbed: Testbed, tmp_path: Path
) -> None:
    """A model of several files travels as one content-addressed directory: the main file
    as model.onnx, its external data under the names the model refers to them by."""
    dev = clean_testbed.devices[0]
    model = external_data.external_data_model(
        tmp_path / "ext.onnx", {"W": "weights/w.bin", "b": "b.bin"}
    )
    first = device_target.deploy(model, "ext")
    assert first.uploaded and first.activated and first.version == "v0001"
    assert first.path.endswith("/models/ext/versions/v0001/model/model.onnx")
    blob = dev.deploy_path / "blobs" / first.sha256
    host = {
        name: hashlib.sha256((tmp_path / local).read_bytes()).hexdigest()
        for name, local in [("model.onnx", "ext.onnx"), ("weights/w.bin", "weights/w.bin"),
                            ("b.bin", "b.bin")]
    }  # fmt: skip
    assert _listing(clean_testbed, blob) == host
    # ONNX Runtime on the device finds the external data through the version's link
    load = "import onnxruntime, sys; onnxruntime.InferenceSession(sys.argv[1])"
    clean_testbed.run_as(dev, [str(DEVICE_PYTHON), "-c", load, first.path], check=True)

    again = device_target.deploy(model, "ext")
    assert not again.uploaded and not again.activated
    report = device_target.profile(model)  # stages into the very same directory
    assert report.latency_ms.n >= 100 and report.target is not None
    assert report.target["model_path"] == str(blob / "model.onnx")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    outputs = device_target.run(model, {"x": x})
    np.testing.assert_allclose(outputs["y"], external_data.expected(x), rtol=1e-6)

    # new weights, same model file: a new directory and version
    (tmp_path / "b.bin").write_bytes(np.zeros(3, np.float32).tobytes())
    second = device_target.deploy(model, "ext")
    assert second.uploaded and second.version == "v0002" and second.sha256 != first.sha256

    # a corrupted companion is caught when rolling back to it, and removed
    clean_testbed.run_as(dev, ["sh", "-c", 'echo x >> "$1"', "-", str(blob / "b.bin")], check=True)
    with pytest.raises(DeployError, match="is corrupted"):
        device_target.store().rollback("ext")
    assert clean_testbed.run_as(dev, ["test", "-e", str(blob)]).returncode != 0
    device_target.store().remove("ext")
    blobs = clean_testbed.run_as(dev, ["ls", str(dev.deploy_path / "blobs")]).stdout.split()
    assert second.sha256 not in blobs


def test_companion_names_cannot_leave_the_model_directory(
    device_target: SSHTarget, clean_testbed: Testbed, tmp_path: Path
) -> None:
    (tmp_path / "secret.bin").write_bytes(b"host secret")
    (tmp_path / "m").mkdir()
    for location in ("../secret.bin", str(tmp_path / "secret.bin")):
        model = external_data.external_data_model(tmp_path / "m" / "m.onnx")
        _relocate(model, location)
        with pytest.raises(ModelError, match="refusing companion file name"):
            device_target.deploy(model, "escape")
    (tmp_path / "m" / "link.bin").symlink_to(tmp_path / "secret.bin")
    _relocate(model, "link.bin")
    with pytest.raises(ModelError, match="outside the model's directory"):
        device_target.stage_model(model)
    dev = clean_testbed.devices[0]
    found = clean_testbed.run_as(dev, ["grep", "-rl", "host secret", str(dev.home)]).stdout
    assert found == ""


def _relocate(model: Path, location: str) -> None:
    """Point every external tensor of ``model`` at ``location`` (the bytes are not read)."""
    proto = onnx.load(str(model), load_external_data=False)
    graph = proto.graph
    constants = [a.t for node in graph.node for a in node.attribute if a.HasField("t")]
    for tensor in [*graph.initializer, *constants]:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    model.write_bytes(proto.SerializeToString())


def test_a_model_of_several_files_must_fit_as_a_whole(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    """Each file would fit alone, both do not: refused before anything is written."""
    dev = clean_testbed.devices[3]
    clean_testbed.small_disk(dev, 8192)
    model = external_data.external_data_model(tmp_path / "m.onnx", {"W": "w.bin", "b": "b.bin"})
    for name in ("w.bin", "b.bin"):  # deploy never parses the bytes: pad them
        with (tmp_path / name).open("ab") as f:
            f.write(bytes(5 << 20))
    with open_target(dev.name, connect) as target:
        assert isinstance(target, SSHTarget)
        with pytest.raises(DeployError, match=r"not enough space .* need 10\.\d MiB"):
            target.deploy(model, "whole")
        assert target.store().describe("whole").active is None
    leftovers = clean_testbed.run_as(dev, ["find", str(dev.deploy_path), "-name", "*.bin"])
    assert leftovers.stdout == ""


def _not_private(root: Path) -> dict[str, str]:
    """Entries under ``root`` (and itself) that are no link and not 0700 or 0600."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        want = 0o700 if stat.S_ISDIR(mode) else 0o600
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) != want:
            wrong[str(path.relative_to(root))] = oct(stat.S_IMODE(mode))
    return wrong


def test_what_edgeship_keeps_on_the_device_is_its_users_alone(
    device_target: SSHTarget, clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    """A root an older edgeship left readable, in a home others may enter: after setup
    and a deploy, every entry is 0700 or 0600 and another user of the board reads none."""
    dev, other = clean_testbed.devices[0], clean_testbed.devices[1]
    root, home_mode = dev.deploy_path, dev.home.stat().st_mode
    older = 'mkdir -p "$1" && touch "$1/lock" && chmod -R go+rX "$1" && chmod go+rx "$HOME"'
    clean_testbed.run_as(dev, ["sh", "-c", older, "sh", str(root)], check=True)
    try:
        assert _not_private(root)
        setup_device(device_target, python="/opt/edgeship-testbed/venv/bin/python")
        device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx"), "private")
        assert _not_private(root) == {}
        meta = root / "models" / "private" / "current" / "meta.json"
        for argv in (["cat", str(meta)], ["cat", str(root / "config.json")], ["ls", str(root)]):
            denied = clean_testbed.run_as(other, argv)
            assert denied.returncode != 0 and "Permission denied" in denied.stderr, argv
    finally:
        dev.home.chmod(stat.S_IMODE(home_mode))
