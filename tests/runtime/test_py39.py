"""The runtime zipapp on Python 3.9, the oldest Python a board ships (JetPack 5, Pi OS 11).

A 3.9 virtual environment with numpy and ONNX Runtime (their last releases with 3.9 wheels)
is created once per machine under /opt/edgeship-testbed, as the testbed's device Python is.
Without a 3.9 interpreter the tests skip; if the packages cannot be installed (offline)
they skip and say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeship import ProfileReport
from edgeship.core.config import ProfileConfig
from edgeship.targets.bundle import ensure_bundle
from edgeship.targets.local import LocalTarget
from edgeship_runtime.measure import MeasurePolicy
from tools.testbed import TestbedError
from tools.testbed.pyenv import DEVICE_PYTHON_ROOT, ensure_device_python

PINS = ("numpy==2.0.2", "onnxruntime==1.19.2")  # the last releases with cp39 wheels
CANDIDATES = ("/root/.pyenv/versions/3.9.18/bin/python", "python3.9")
VENV = DEVICE_PYTHON_ROOT / "py39"


def find_python39() -> str | None:
    for candidate in CANDIDATES:
        path = shutil.which(candidate)
        if path is None:
            continue
        done = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode == 0 and done.stdout.strip() == "3.9":
            return path
    return None


@pytest.fixture(scope="module")
def python39() -> str:
    """A 3.9 interpreter with numpy and onnxruntime, built once per machine beside the
    testbed's device Python (a clean clone's CI run reuses it)."""
    base = find_python39()
    if base is None:
        pytest.skip(f"no Python 3.9 interpreter (looked for {', '.join(CANDIDATES)})")
    try:
        return str(ensure_device_python(("--only-binary=:all:", *PINS), VENV, Path(base)))
    except (TestbedError, OSError) as exc:
        pytest.skip(f"cannot build the Python 3.9 environment: {exc}")


def run_pyz(python: str, *args: str) -> dict:
    done = subprocess.run(
        [python, str(ensure_bundle()), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def test_info_on_python39(python39: str) -> None:
    info = run_pyz(python39, "info")
    assert info["runtime"]["python"].startswith("3.9.")
    backends = {b["name"]: b for b in info["backends"]}
    assert backends["onnxruntime"]["available"] is True
    assert backends["onnxruntime"]["version"] == "1.19.2"
    assert backends["tflite"]["available"] is False  # not installed there: said, not fatal
    assert backends["tflite"]["reason"]


def test_profile_on_python39(python39: str, multi_input_onnx: Path) -> None:
    data = run_pyz(
        python39, "profile", str(multi_input_onnx), "--runs", "5", "--warmup", "1",
        "--min-seconds", "0",
        "--shape", "features=2,3,8", "--shape", "token_ids=2,3",
    )  # fmt: skip
    report = ProfileReport.from_dict(data)
    assert report.environment.python.startswith("3.9.")
    assert report.backend.version == "1.19.2"
    assert report.latency_ms.n == 5
    assert [t.dtype for t in report.inputs] == ["float32", "int64"]


def test_error_on_python39(python39: str, truncated_onnx: Path) -> None:
    done = subprocess.run(
        [python39, str(ensure_bundle()), "profile", str(truncated_onnx)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["type"] == "ModelError"
    assert "Traceback" not in done.stderr


def test_local_target_speaks_the_protocol_with_python39(
    python39: str, state_onnx: Path, add_onnx: Path
) -> None:
    with LocalTarget(python=python39) as target:
        assert target.info()["runtime"]["python"].startswith("3.9.")
        report = target.profile(state_onnx, ProfileConfig(policy=MeasurePolicy(min_seconds=0)))
        assert report.environment.python.startswith("3.9.")
        out = target.run(add_onnx, {"x": np.ones((2, 4), np.float32)})
    np.testing.assert_array_equal(out["y"], np.full((2, 4), 2.0, np.float32))
    assert sys.version_info[:2] != (3, 9)  # the host side stays on its own Python


def test_policy_default_window(python39: str, add_onnx: Path) -> None:
    latency = run_pyz(python39, "profile", str(add_onnx))["latency_ms"]
    policy = MeasurePolicy()
    assert (
        latency["n"] >= policy.runs and latency["n"] * latency["mean"] >= 1000 * policy.min_seconds
    )
