"""Deploy, versions, rollback, removal and hostile names, over real SSH."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from edgeship.config import ConnectOptions
from edgeship.errors import DeployError, UsageError
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import cli
from tools.testbed import Testbed


def _current(testbed: Testbed, name: str) -> str:
    dev = testbed.devices[0]
    link = dev.deploy_path / "models" / name / "current"
    return testbed.run_as(dev, ["readlink", str(link)], check=True).stdout.strip()


def _fresh(zoo: Path, tmp_path: Path, model: str) -> Path:
    """A copy of a zoo model with bytes no other test has sent (deploy never parses it)."""
    fresh = tmp_path / model
    fresh.write_bytes((zoo / model).read_bytes() + tmp_path.name.encode())
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
        for i in range(4):  # four different files: the model plus a distinct trailing byte
            variant = tmp_path / f"m{i}.onnx"
            variant.write_bytes((zoo / "mlp.onnx").read_bytes() + bytes([i]))
            target.deploy(variant, "pruned")
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
    assert done.activated and report.latency_ms.n == 100
    dev = clean_testbed.devices[0]
    found = clean_testbed.run_as(dev, ["find", str(dev.home), "-name", "pwned"]).stdout
    assert found == ""
    device_target.store().remove("safe")


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
    staged = device_target.stage_model(_fresh(zoo, tmp_path, "cnn.onnx"))
    device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx"), "gc-a")
    device_target.store().remove("gc-a")  # collects gc-a's blob, spares the staged one
    listing = clean_testbed.run_as(dev, ["ls", str(blobs)], check=True).stdout.split()
    assert listing == [Path(staged).name]
    old = "@" + str(int(time.time()) - 3600)  # unused for an hour: past the grace period
    clean_testbed.run_as(dev, ["touch", "-d", old, staged], check=True)
    device_target.deploy(_fresh(zoo, tmp_path, "mlp.onnx"), "gc-b")
    device_target.store().remove("gc-b")
    assert clean_testbed.run_as(dev, ["ls", str(blobs)], check=True).stdout.split() == []
