"""A newcomer's first hour against a real board: the Python API's deploy and A/B, and the
errors one meets first (a typo in a device name, a rollback of a name never deployed, a
profile before ``edgeship setup``), each one line that says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import edgeship
from edgeship.ab import Schedule
from edgeship.core.config import ConnectOptions
from tests.e2e.conftest import cli
from tools.testbed import Testbed

DEVICE_PYTHON = "/opt/edgeship-testbed/venv/bin/python"


def _error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_api_deploy_then_ls_by_positional_target(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    dev = clean_testbed.devices[2].name
    (done,) = edgeship.deploy(zoo / "mlp.onnx", dev, name="newcomer", options=connect)
    assert isinstance(done, edgeship.Deployment)
    assert done.name == "newcomer" and done.activated
    listed = cli(clean_testbed, "ls", dev, "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = [e for e in json.loads(listed.stdout) if e["name"] == "newcomer"]
    assert entry["active"] == done.version
    assert cli(clean_testbed, "rm", "newcomer", "--target", dev).returncode == 0


def test_api_ab_on_a_device(clean_testbed: Testbed, connect: ConnectOptions, zoo: Path) -> None:
    dev = clean_testbed.devices[2].name
    config = edgeship.ABConfig(
        schedule=Schedule(runs=40, sessions=6, block=10, min_seconds=0.01), memory=False
    )
    report = edgeship.ab(
        zoo / "mlp.onnx", [zoo / "mlp.tflite"], dev, config=config, options=connect
    )
    (device,) = report.devices
    assert device.target["name"] == dev and not report.failures
    assert [c.variant for c in device.comparisons] == ["mlp.tflite"]


def test_a_misspelled_device_gets_a_suggestion(clean_testbed: Testbed) -> None:
    dev = clean_testbed.devices[0].name
    done = cli(clean_testbed, "probe", f"{dev}x")
    assert done.returncode == 2
    assert _error_line(done.stderr) == f"error: unknown target '{dev}x'; did you mean '{dev}'?"


def test_rollback_of_a_name_never_deployed(clean_testbed: Testbed) -> None:
    dev = clean_testbed.devices[2].name
    done = cli(clean_testbed, "rollback", "never-deployed", "--target", dev)
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith(f"error: {dev}: no model named 'never-deployed' is deployed (deployed: ")
    assert "None" not in line


def test_profile_before_setup_says_to_run_setup(clean_testbed: Testbed, zoo: Path) -> None:
    """A board whose Python has numpy but no backend yet (``import onnxruntime`` fails)."""
    dev = clean_testbed.devices[2]
    root = dev.home / "before-setup"
    script = (
        f"mkdir -p {root}/site/onnxruntime && "
        f"echo 'raise ImportError(\"No module named onnxruntime\")' "
        f"> {root}/site/onnxruntime/__init__.py && "
        f"printf '#!/bin/sh\\nPYTHONPATH={root}/site exec {DEVICE_PYTHON} \"$@\"\\n' "
        f"> {root}/python && chmod +x {root}/python"
    )
    clean_testbed.run_as(dev, ["sh", "-c", script], check=True)
    done = cli(
        clean_testbed, "profile", str(zoo / "mlp.onnx"), "--target", dev.name,
        "--python", str(root / "python"), "--runs", "3",
    )  # fmt: skip
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert line.startswith(f"error: {dev.name}: no installed backend can run onnx models")
    assert f"run `edgeship setup {dev.name}` first" in line


def test_profile_with_a_python_lacking_numpy_says_to_run_setup(
    clean_testbed: Testbed, zoo: Path
) -> None:
    dev = clean_testbed.devices[2].name
    done = cli(
        clean_testbed, "profile", str(zoo / "mlp.onnx"), "--target", dev,
        "--python", "/usr/bin/python3", "--runs", "3",
    )  # fmt: skip
    assert done.returncode == 1
    line = _error_line(done.stderr)
    assert "No module named 'numpy'" in line and "edgeship setup" in line
