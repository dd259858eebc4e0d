"""The Jetson profiles' GPU path: ONNX Runtime's CUDA and TensorRT execution providers.

The Jetson profiles put TensorRT, then CUDA, before the CPU. These tests run a model with
each provider on this machine when it has an NVIDIA GPU and an onnxruntime build with
that provider (``onnxruntime-gpu``), and check the provider really ran (the report names
the providers the session used). Without one they skip, saying so: the path is then
unproven here, only its CPU fallback is (``test_board_defaults.py``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgeship.config import ProfileConfig
from edgeship.profiles import get_profile
from edgeship.targets import LocalTarget
from edgeship_runtime.backends import SessionOptions

pytestmark = pytest.mark.cuda
UNPROVEN = "no CUDA device: the CUDA/TensorRT execution-provider path is unproven here"


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None


def _require(provider: str) -> None:
    """Skip unless this machine has a GPU and onnxruntime offers ``provider``."""
    if not _gpu_present():
        pytest.skip(UNPROVEN)
    import onnxruntime

    if provider not in onnxruntime.get_available_providers():
        pytest.skip(f"{UNPROVEN} (onnxruntime {onnxruntime.__version__} has no {provider})")


def _profile_with(model: Path, providers: tuple[str, ...]) -> list[str]:
    config = ProfileConfig(session=SessionOptions(providers=providers))
    with LocalTarget() as target:
        report = target.profile(model, config)
    assert report.latency_ms.n > 0
    return list(report.backend.providers)


def test_the_jetson_profiles_ask_for_tensorrt_then_cuda_then_the_cpu() -> None:
    """What the GPU tests below prove is what every Jetson profile asks for."""
    for name in ("jetson", "jetson-nano", "jetson-xavier", "jetson-orin-nano"):
        assert get_profile(name).onnxruntime_providers == (
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ), name


def test_cuda_execution_provider_runs_the_model(add_onnx: Path) -> None:
    _require("CUDAExecutionProvider")
    used = _profile_with(add_onnx, ("CUDAExecutionProvider",))
    assert used[0] == "CUDAExecutionProvider"


def test_tensorrt_execution_provider_runs_the_model(add_onnx: Path) -> None:
    _require("TensorrtExecutionProvider")
    used = _profile_with(add_onnx, ("TensorrtExecutionProvider", "CUDAExecutionProvider"))
    assert used[0] == "TensorrtExecutionProvider"
