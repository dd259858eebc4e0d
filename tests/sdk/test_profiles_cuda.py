"""The Jetson profiles' GPU path: ONNX Runtime's CUDA and TensorRT execution providers.

The Jetson profiles put TensorRT, then CUDA, before the CPU. These tests run a model with
each provider on this machine when it has an NVIDIA GPU and an onnxruntime build with
that provider (``onnxruntime-gpu``), and check the provider really ran (the report names
the providers the session used, and none asked for in vain), and that TensorRT keeps the
engines it built under the deploy root and a new runtime process loads them instead of
building again. Without a GPU they skip, saying so: the path is then unproven here, only
its CPU fallback is (``test_board_defaults.py``, ``test_trt_options.py``). With
``EDGESHIP_REQUIRE_GPU=1`` (``tools/gpu/prove_cuda.sh`` sets it) a skip is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgeship.core.config import ProfileConfig
from edgeship.targets import LocalTarget
from edgeship.targets.profiles import get_profile
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.report import ProfileReport
from tests import models

pytestmark = pytest.mark.cuda
UNPROVEN = "no CUDA device: the CUDA/TensorRT execution-provider path is unproven here"
TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
QUICK = MeasurePolicy(warmup=2, runs=10, steady=False, min_seconds=0)


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None


def _require(provider: str) -> None:
    """Skip unless this machine has a GPU and onnxruntime offers ``provider``."""
    unproven = pytest.fail if os.environ.get("EDGESHIP_REQUIRE_GPU") else pytest.skip
    if not _gpu_present():
        unproven(UNPROVEN)
    import onnxruntime

    if provider not in onnxruntime.get_available_providers():
        unproven(f"{UNPROVEN} (onnxruntime {onnxruntime.__version__} has no {provider})")


def _profile_with(model: Path, session: SessionOptions) -> ProfileReport:
    """A profile in a runtime process of its own (a new process remembers only the disk)."""
    with LocalTarget() as target:
        report = target.profile(model, ProfileConfig(policy=QUICK, session=session))
    assert report.latency_ms.n > 0
    assert report.backend.providers_not_run == [], report.backend
    return report


def _deployed(root: Path) -> Path:
    """A conv model where a deploy puts it (``ROOT/blobs/``): its engines go under ROOT."""
    (root / "blobs").mkdir(parents=True)
    return models.map_model(root / "blobs" / "map.onnx", side=64)


def _engines(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in (root / "cache" / "trt").rglob("*.engine")}


def test_the_jetson_profiles_ask_for_tensorrt_then_cuda_then_the_cpu() -> None:
    """What the GPU tests below prove is what every Jetson profile asks for."""
    for name in ("jetson", "jetson-nano", "jetson-xavier", "jetson-orin-nano"):
        assert get_profile(name).onnxruntime_providers == (
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ), name


def test_cuda_execution_provider_runs_the_model(add_onnx: Path) -> None:
    _require(CUDA)
    report = _profile_with(add_onnx, SessionOptions(providers=(CUDA,)))
    assert report.backend.providers[0] == CUDA


def test_tensorrt_execution_provider_runs_the_model(add_onnx: Path) -> None:
    _require(TRT)
    report = _profile_with(add_onnx, SessionOptions(providers=(TRT, CUDA), trt_cache=False))
    assert report.backend.providers[0] == TRT


def test_tensorrt_engines_are_kept_under_the_deploy_root_and_loaded_again(
    tmp_path: Path,
) -> None:
    _require(TRT)
    root = tmp_path / "root"
    model = _deployed(root)
    session = SessionOptions(providers=(TRT, CUDA))
    built = _profile_with(model, session)
    engines = _engines(root)
    assert built.backend.providers[0] == TRT
    assert engines, f"no engine under {root / 'cache' / 'trt'}"
    loaded = _profile_with(model, session)
    assert _engines(root) == engines  # the same files: nothing was built again
    assert loaded.load_ms + loaded.first_inference_ms < built.load_ms + built.first_inference_ms, (
        loaded.load_ms,
        loaded.first_inference_ms,
        built.load_ms,
        built.first_inference_ms,
    )


def test_tensorrt_fp16_engines_are_kept_apart(tmp_path: Path) -> None:
    _require(TRT)
    root = tmp_path / "root"
    model = _deployed(root)
    _profile_with(model, SessionOptions(providers=(TRT, CUDA), trt_fp16=True))
    assert {p.parent.name.rsplit("-", 1)[-1] for p in _engines(root)} == {"fp16"}
