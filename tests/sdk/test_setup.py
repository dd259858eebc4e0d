"""Setup's package installation: one backend without a wheel does not sink the others."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from edgeship.errors import ConfigError, RemoteCommandError, TargetError
from edgeship.setup import _make_venv, _require_python, install_each


def _installer(missing: set[str]) -> tuple[list[str], Any]:
    tried: list[str] = []

    def install(package: str) -> None:
        tried.append(package)
        if package in missing:
            raise RemoteCommandError(
                "pi",
                f"pip install {package}",
                1,
                f"Collecting {package}\nERROR: No matching distribution found for {package}\n",
            )

    return tried, install


def test_every_package_installs() -> None:
    tried, install = _installer(set())
    assert install_each(["numpy", "onnxruntime", "ai-edge-litert"], install) == (
        ["numpy", "onnxruntime", "ai-edge-litert"],
        {},
    )
    assert tried == ["numpy", "onnxruntime", "ai-edge-litert"]


def test_litert_falls_back_to_tflite_runtime_and_a_missing_backend_is_left_out() -> None:
    tried, install = _installer({"onnxruntime", "ai-edge-litert"})
    installed, skipped = install_each(["numpy", "onnxruntime", "ai-edge-litert"], install)
    assert installed == ["numpy", "tflite-runtime"]
    assert tried == ["numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime"]
    assert skipped == {
        "onnxruntime": "onnxruntime: ERROR: No matching distribution found for onnxruntime"
    }


def test_a_backend_and_its_fallback_both_missing_name_both_reasons() -> None:
    _, install = _installer({"ai-edge-litert", "tflite-runtime"})
    _, skipped = install_each(["numpy", "ai-edge-litert"], install)
    assert skipped["ai-edge-litert"].startswith("ai-edge-litert: ERROR: No matching")
    assert "; tflite-runtime: ERROR: No matching distribution" in skipped["ai-edge-litert"]


def test_a_missing_base_package_is_an_error() -> None:
    _, install = _installer({"numpy"})
    with pytest.raises(TargetError, match="No matching distribution found for numpy"):
        install_each(["numpy", "onnxruntime"], install)


def test_a_python_without_venv_support_is_a_clear_config_error() -> None:
    def run(argv: list[str], timeout: float) -> None:
        raise RemoteCommandError(
            "pi",
            " ".join(argv),
            1,
            "The virtual environment was not created successfully because ensurepip is "
            "not available.\n",
        )

    target = SimpleNamespace(
        name="pi",
        store=lambda: SimpleNamespace(layout=SimpleNamespace(path=lambda *p: "/r/venv")),
        connection=SimpleNamespace(run=run),
    )
    seen = {"python": {"executable": "/usr/bin/python3"}}
    with pytest.raises(ConfigError) as caught:
        _make_venv(target, seen, ["numpy"], offline=False)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "pi: /usr/bin/python3 cannot create a venv (The virtual environment" in message
    assert "install the python3-venv package on the device, or pass --python" in message


def test_setup_refuses_a_python_older_than_the_runtime_needs() -> None:
    seen = {"python": {"version": "3.6.9", "executable": "/usr/bin/python3"}}
    with pytest.raises(ConfigError) as caught:
        _require_python("nano", seen)
    assert str(caught.value) == (
        "nano: /usr/bin/python3 is Python 3.6.9; the edgeship runtime needs 3.9 or newer: "
        "install a newer Python on the device and pass it with --python"
    )
    _require_python("pi", {"python": {"version": "3.9.2", "executable": "/usr/bin/python3"}})
