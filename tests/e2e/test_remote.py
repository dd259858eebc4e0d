"""Probe, setup, profile and run over real SSH (OpenSSH servers in network namespaces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship.core.config import ConnectOptions, ProfileConfig
from edgeship.targets import SSHTarget, open_targets
from edgeship.targets.fleet import run_each
from edgeship.targets.provision import setup_device
from edgeship_runtime.report import ProfileReport
from tests.e2e.conftest import cli
from tests.models import add_model
from tools.testbed import DEVICE_PYTHON, Testbed


def test_probe_reports_the_device_and_matches_a_profile(clean_testbed: Testbed) -> None:
    dev = clean_testbed.devices[1]
    done = cli(clean_testbed, "probe", dev.name, "--json")  # as the README writes it
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["arch"] == "x86_64" and seen["profile"] == "generic-x86_64"
    assert seen["backends"]["onnxruntime"]["available"]
    assert "CPUExecutionProvider" in seen["backends"]["onnxruntime"]["providers"]
    assert seen["backends"]["ai_edge_litert"]["available"]
    assert seen["disk"]["free_mb"] > 0 and seen["cores"] >= 1
    assert seen["target"]["host"] == f"{dev.user}@{dev.address}"


def test_setup_with_an_existing_python_installs_only_the_runtime(
    device_target: SSHTarget, clean_testbed: Testbed
) -> None:
    python = "/opt/edgeship-testbed/venv/bin/python"
    result = setup_device(device_target, python=python)
    assert result.method == "existing-python" and result.python == python
    assert result.backends["onnxruntime"]["available"]
    dev = clean_testbed.devices[0]
    listing = clean_testbed.run_as(dev, ["ls", str(dev.deploy_path / "runtime")], check=True)
    assert listing.stdout.strip().endswith(".pyz")
    recorded = clean_testbed.run_as(dev, ["cat", str(dev.deploy_path / "config.json")])
    assert json.loads(recorded.stdout)["python"] == python


def test_profile_over_ssh_matches_the_local_report_schema(
    device_target: SSHTarget, zoo: Path
) -> None:
    config = ProfileConfig(samples=True)
    report = device_target.profile(zoo / "cnn.onnx", config)
    again = ProfileReport.from_json(report.to_json())
    assert again == report
    assert report.target and report.target["kind"] == "ssh"
    assert report.target["model_path"].startswith("/home/")
    assert report.model.path == str(zoo / "cnn.onnx")
    assert report.latency_ms.n >= 100 and len(report.samples_ms or []) == report.latency_ms.n
    assert report.backend.providers == ["CPUExecutionProvider"]
    assert report.environment.python.startswith("3.")
    assert report.memory_mb.peak_rss >= report.memory_mb.rss_after_load > 0
    assert all(o.all_finite for o in report.outputs)


def test_run_brings_back_the_outputs_onnxruntime_computes(
    device_target: SSHTarget, zoo: Path
) -> None:
    with np.load(zoo / "digits_test.npz") as data:
        images = data["input"][:16]
    outputs = device_target.run(zoo / "cnn.onnx", {"input": images})
    expected = ort.InferenceSession(str(zoo / "cnn.onnx")).run(None, {"input": images})[0]
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5, atol=1e-5)


def test_cli_run_writes_outputs(clean_testbed: Testbed, zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "y.npz"
    done = cli(
        clean_testbed,
        "run",
        str(zoo / "mlp.tflite"),
        "--target",
        clean_testbed.devices[2].name,
        "--inputs",
        str(zoo / "digits_test.npz"),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    with np.load(out) as data:
        (logits,) = data.values()
    assert logits.shape[1] == 10


def test_fleet_profile_keeps_going_when_one_device_is_down(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    down = clean_testbed.devices[3]
    clean_testbed.blackhole(down)
    targets = open_targets("testbed", connect)
    assert len(targets) == 4
    results = run_each(targets, lambda t: t.profile(zoo / "mlp.onnx", ProfileConfig()))
    failed = [r for r in results if not r.ok]
    assert [r.target for r in failed] == [down.name]
    assert "timed out" in str(failed[0].error)
    assert all(r.value is not None and r.value.latency_ms.n >= 100 for r in results if r.ok)


def test_cli_fleet_exit_status_says_whether_all_succeeded(
    clean_testbed: Testbed, zoo: Path
) -> None:
    names = ",".join(d.name for d in clean_testbed.devices[:2])
    done = cli(
        clean_testbed, "profile", str(zoo / "mlp.onnx"), "--target", names, "--runs", "20", "--json"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and [r["target"] for r in data["results"]] == names.split(",")
    clean_testbed.blackhole(clean_testbed.devices[1])
    done = cli(
        clean_testbed,
        "profile",
        str(zoo / "mlp.onnx"),
        "--target",
        names,
        "--runs",
        "20",
        "--json",
        "--connect-timeout",
        "2",
    )
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert not data["ok"] and data["results"][0]["error"] is None
    assert data["results"][1]["error"]["type"] == "ConnectError"
    assert "Traceback" not in done.stderr


def test_setup_from_a_wheelhouse_on_a_device_without_internet(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    """The device's namespace has no route out: wheels come from this host, pushed."""
    dev = clean_testbed.devices[3]
    offline = clean_testbed.run_as(
        dev, ["python3", "-c", "import socket; socket.create_connection(('pypi.org', 443), 3)"]
    )
    assert offline.returncode != 0
    (target,) = open_targets(dev.name, ConnectOptions(**{**connect.__dict__, "python": None}))
    assert isinstance(target, SSHTarget)
    target._python = None  # the testbed's targets file names a ready Python: do without it
    with target:
        # a backend with no wheel for the device is left out, with pip's reason
        packages = ["numpy", "onnxruntime", "edgeship-no-such-backend"]
        result = setup_device(target, wheelhouse=True, packages=packages)
        assert result.method == "venv-wheelhouse"
        assert result.python.endswith("/venv/bin/python")
        assert result.backends["onnxruntime"]["available"]
        assert result.packages == ["numpy", "onnxruntime"]
        assert list(result.skipped) == ["edgeship-no-such-backend"]
        assert "No matching distribution" in result.skipped["edgeship-no-such-backend"]
        report = target.profile(zoo / "mlp.onnx")
    assert report.environment.python.startswith("3.")
    assert report.backend.name == "onnxruntime"


def test_proxyjump_from_ssh_config_is_honoured(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    """Reach a device through a jump host named by ProxyJump (here: the device itself,
    the one address its namespace can route to), as a bastion setup would."""
    dev = clean_testbed.devices[0]
    config = tmp_path / "ssh_config"
    config.write_text(
        clean_testbed.ssh_config.read_text()
        + f"\nHost behind-jump\n    HostName {dev.address}\n    User {dev.user}\n"
        f"    IdentityFile {clean_testbed.identity}\n"
        f"    UserKnownHostsFile {clean_testbed.known_hosts}\n    ProxyJump {dev.name}\n"
    )
    options = ConnectOptions(
        ssh_config=config, timeouts=connect.timeouts, python=str(DEVICE_PYTHON)
    )
    (target,) = open_targets("behind-jump", options)
    assert isinstance(target, SSHTarget)
    with target:
        assert target.host.proxy_jump == dev.name
        info = target.info()
        assert target.connection._jump is not None  # the hop was really used
    assert info["runtime"]["protocol"] == 2


@pytest.mark.parametrize("given", ["inputs", "shape"])
def test_profile_reports_the_shapes_it_ran_on_every_target(
    clean_testbed: Testbed, tmp_path: Path, given: str
) -> None:
    """A (3, 7) input, from a file or ``--shape``, is what local and an SSH device both
    run, and both report: inputs, batch and outputs alike."""
    model = add_model(tmp_path / "add7.onnx", width=7)
    inputs = tmp_path / "x.npz"
    np.savez(inputs, x=np.ones((3, 7), np.float32))
    how = ["--inputs", str(inputs)] if given == "inputs" else ["--shape", "x=3,7"]
    seen = {}
    for target in ("local", clean_testbed.devices[0].name):
        done = cli(clean_testbed, "profile", str(model), "--target", target, *how,
                   "--runs", "3", "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        (report,) = json.loads(done.stdout)
        seen[target] = (
            [i["shape"] for i in report["inputs"]],
            report["batch_size"],
            [o["shape"] for o in report["outputs"]],
        )
    assert list(seen.values()) == [([[3, 7]], 3, [[3, 7]])] * 2, seen
