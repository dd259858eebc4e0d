"""Backends: the registry, signatures read from real files, providers, delegates, absence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.backends import (
    SessionOptions,
    backend_names,
    base,
    choose_backend,
    get_backend,
    register_backend,
    tflite,
)
from edgeship_runtime.backends.onnxruntime import CPU, OnnxRuntimeBackend, select_providers
from edgeship_runtime.backends.tflite import TFLiteBackend
from edgeship_runtime.errors import BackendUnavailable, InferenceError, UsageError
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.model import load_model
from tests import models

CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private copy of the registry, so tests may register freely."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


# ---------------------------------------------------------------------------- registry


def test_both_backends_are_registered() -> None:
    assert backend_names() == ["onnxruntime", "tflite"]


def test_duplicate_name_is_an_error(registry: None) -> None:
    with pytest.raises(ValueError, match="'onnxruntime' is already registered"):
        register_backend("onnxruntime", OnnxRuntimeBackend)
    register_backend("other", OnnxRuntimeBackend)
    with pytest.raises(ValueError, match="'other' is already registered"):
        register_backend("other", TFLiteBackend)


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(
        UsageError, match=r"unknown backend 'tensorrt' \(known: onnxruntime, tflite\)"
    ):
        get_backend("tensorrt")


def test_requested_backend_must_read_the_format() -> None:
    with pytest.raises(UsageError, match="backend 'tflite' cannot read onnx models"):
        choose_backend("onnx", "tflite")


def test_no_backend_for_a_format() -> None:
    with pytest.raises(BackendUnavailable, match="none registered"):
        choose_backend("coreml")


def test_negative_threads_are_refused() -> None:
    with pytest.raises(UsageError, match=r"threads must be 0 .* got -1"):
        SessionOptions(threads=-1)


# ------------------------------------------------------------------------- onnxruntime


def test_onnx_signature_with_symbolic_dims_and_int64(multi_input_onnx: Path) -> None:
    sig = load_model(str(multi_input_onnx)).session.signature
    assert [(s.name, s.shape, s.dtype) for s in sig.inputs] == [
        ("features", ("batch", "seq", models.WIDTH), "float32"),
        ("token_ids", ("batch", "seq"), "int64"),
    ]
    assert [(s.name, s.shape) for s in sig.outputs] == [
        ("out", ("batch", "seq", models.WIDTH)),
        ("pooled", ("batch", models.WIDTH)),
    ]


def test_onnx_signature_unnamed_and_fixed_dims(tmp_path: Path) -> None:
    unnamed = load_model(str(models.add_model(tmp_path / "u.onnx", batch=None)))
    fixed = load_model(str(models.add_model(tmp_path / "f.onnx", batch=3)))
    assert unnamed.session.signature.inputs[0].shape == (None, 4)
    assert fixed.session.signature.inputs[0].shape == (3, 4)
    assert not fixed.session.signature.inputs[0].is_dynamic


def test_onnx_runs_on_cpu_by_default(add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    assert model.backend.name == "onnxruntime"
    assert model.backend.providers == [CPU]
    assert model.backend.delegates == []
    assert model.backend.version == OnnxRuntimeBackend().info().version


def test_onnx_run_failure_is_an_inference_error(failing_onnx: Path) -> None:
    model = load_model(str(failing_onnx))
    model.run({"x": np.zeros((1, models.FAIL_WIDTH), np.float32)})  # batch 1 fits
    with pytest.raises(InferenceError, match="ONNX Runtime failed to run the model"):
        model.run({"x": np.zeros((2, models.FAIL_WIDTH), np.float32)})


def test_onnx_backend_info() -> None:
    info = OnnxRuntimeBackend().info()
    assert info.available and info.reason is None
    assert CPU in info.providers
    assert info.formats == ("onnx",)


def test_select_providers_defaults_to_cpu() -> None:
    assert select_providers((), [CPU, CUDA]) == [CPU]


def test_select_providers_keeps_order_and_appends_cpu() -> None:
    assert select_providers((TRT, CUDA), [CUDA, TRT, CPU]) == [TRT, CUDA, CPU]
    assert select_providers((CPU, CUDA), [CUDA, CPU]) == [CPU, CUDA]


def test_select_providers_drops_absent_ones() -> None:
    assert select_providers((TRT, CUDA), [CUDA, CPU]) == [CUDA, CPU]


def test_select_providers_refuses_only_absent_ones() -> None:
    with pytest.raises(UsageError, match=r"\['TensorrtExecutionProvider'\].*available: \['CPU"):
        select_providers((TRT,), [CPU])


def test_onnxruntime_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "onnxruntime")
    info = OnnxRuntimeBackend().info()
    assert not info.available
    assert "cannot import onnxruntime" in str(info.reason)
    with pytest.raises(BackendUnavailable, match="no installed backend can run onnx models"):
        choose_backend("onnx")
    with pytest.raises(BackendUnavailable, match="'onnxruntime' is not installed here: cannot"):
        choose_backend("onnx", "onnxruntime")


# ------------------------------------------------------------------------------ tflite


def test_tflite_signature_dynamic_batch_and_int64(tiny_tflite: Path) -> None:
    sig = load_model(str(tiny_tflite)).session.signature
    assert [(s.shape, s.dtype) for s in sig.inputs] == [
        ((None, models.TFLITE_IN), "float32"),
        ((None, models.TFLITE_IDS), "int64"),
    ]
    assert [(s.shape, s.dtype) for s in sig.outputs] == [((None, models.TFLITE_OUT), "float32")]


def test_tflite_reports_the_xnnpack_delegate(tiny_tflite: Path) -> None:
    model = load_model(str(tiny_tflite), options=SessionOptions(threads=1))
    assert model.backend.name == "tflite"
    assert model.backend.delegates == ["XNNPACK"]
    assert model.backend.providers == []
    assert model.backend.threads == 1


def test_tflite_resizes_for_a_new_batch(tiny_tflite: Path) -> None:
    model = load_model(str(tiny_tflite))
    sig = model.session.signature
    one = model.run(generate_feeds(sig))
    widths = (models.TFLITE_IN, models.TFLITE_IDS)
    three = model.run(
        generate_feeds(sig, {s.name: (3, w) for s, w in zip(sig.inputs, widths, strict=True)})
    )
    assert one[0].shape == (1, models.TFLITE_OUT)
    assert three[0].shape == (3, models.TFLITE_OUT)


def test_loading_a_tflite_model_writes_nothing_to_stderr(tiny_tflite: Path) -> None:
    """LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." (once per
    process, from C++: hence a fresh process) is dropped."""
    code = "import sys; from edgeship_runtime.model import load_model; load_model(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tiny_tflite)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_the_notice_filter_passes_everything_else_on(capfd: pytest.CaptureFixture[str]) -> None:
    with tflite._without_notices():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"WARNING: something a user should see\n")
        os.write(1, b"stdout is not touched\n")
    out, err = capfd.readouterr()
    assert err == "WARNING: something a user should see\n"
    assert out == "stdout is not touched\n"


def test_the_notice_filter_keeps_what_a_failing_load_said(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(RuntimeError), tflite._without_notices():
        os.write(2, b"ERROR: the reason\n")
        raise RuntimeError("load failed")
    assert capfd.readouterr().err == "ERROR: the reason\n"


def test_tflite_backend_info() -> None:
    info = TFLiteBackend().info()
    assert info.available
    assert info.providers == ("XNNPACK",)
    assert info.module == "ai_edge_litert.interpreter"


def test_tflite_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "ai_edge_litert.interpreter", "tflite_runtime.interpreter")
    info = TFLiteBackend().info()
    assert not info.available
    assert "ai_edge_litert.interpreter" in str(info.reason)
    assert "tflite_runtime.interpreter" in str(info.reason)
    with pytest.raises(BackendUnavailable) as exc:
        choose_backend("tflite")
    assert "no installed backend can run tflite models (tflite: " in str(exc.value)
    assert exc.value.details == {"format": "tflite"}
    with pytest.raises(BackendUnavailable, match="'tflite' is not installed here"):
        choose_backend("tflite", "tflite")


def test_tflite_falls_back_to_tflite_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "ai_edge_litert.interpreter")
    info = TFLiteBackend().info()
    if info.available:  # tflite_runtime happens to be installed too
        assert info.module == "tflite_runtime.interpreter"
    else:
        assert "tflite_runtime.interpreter" in str(info.reason)


def test_a_missing_tflite_backend_does_not_stop_onnx(
    monkeypatch: pytest.MonkeyPatch, add_onnx: Path
) -> None:
    hide_modules(monkeypatch, "ai_edge_litert.interpreter", "tflite_runtime.interpreter")
    assert load_model(str(add_onnx)).backend.name == "onnxruntime"
