"""Backends: the registry, signatures read from real files, providers, delegates, absence."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgeship_runtime.backends import (
    SessionOptions,
    backend_names,
    catalog,
    choose_backend,
    get_backend,
    register_backend,
    tflite,
)
from edgeship_runtime.backends.catalog import Import, get_entry
from edgeship_runtime.backends.onnxruntime import (
    CPU,
    OrtSession,
    provider_chain,
    select_providers,
)
from edgeship_runtime.errors import BackendUnavailable, InferenceError, UsageError
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.integrity import sha256_file
from edgeship_runtime.model import LoadedModel, load_model
from tests import models

CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private copy of the catalog, so tests may register freely."""
    monkeypatch.setattr(catalog, "_REGISTRY", dict(catalog._REGISTRY))


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


# ---------------------------------------------------------------------------- registry


def test_both_backends_are_registered() -> None:
    assert backend_names() == ["onnxruntime", "tflite"]


def test_duplicate_name_is_an_error(registry: None) -> None:
    ort = get_entry("onnxruntime")
    with pytest.raises(ValueError, match="'onnxruntime' is already registered"):
        register_backend(ort)
    other = replace(ort, name="other", imports=(Import("other", "other"),), packages=("other",))
    register_backend(other)
    with pytest.raises(ValueError, match="'other' is already registered"):
        register_backend(replace(get_entry("tflite"), name="other"))


def test_a_package_or_module_belongs_to_one_backend(registry: None) -> None:
    ort = get_entry("onnxruntime")
    with pytest.raises(ValueError, match="'gpu': onnxruntime belongs to 'onnxruntime'"):
        register_backend(replace(ort, name="gpu", packages=("onnxruntime-gpu",)))
    with pytest.raises(ValueError, match="'lite': tflite-runtime belongs to 'tflite'"):
        lite = replace(get_entry("tflite"), name="lite", imports=(Import("lite", "lite"),))
        register_backend(replace(lite, packages=("lite", "tflite-runtime")))


def test_a_backend_falls_back_to_its_later_packages() -> None:
    assert catalog.package_fallbacks("ai-edge-litert>=1.0") == ("tflite-runtime",)
    assert catalog.package_fallbacks("tflite-runtime!=2.12.0") == ()
    assert catalog.package_fallbacks("numpy") == ()


def test_a_format_no_backend_runs_has_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_REGISTRY", {"onnxruntime": get_entry("onnxruntime")})
    with pytest.raises(UsageError, match="no backend runs tflite models"):
        catalog.default_backend("tflite")


def test_registering_imports_no_adapter_and_no_engine() -> None:
    code = (
        "import sys, edgeship_runtime.backends as b; b.backend_names(); "
        "print(sorted(m for m in sys.modules if m.startswith(('onnxruntime', 'ai_edge', "
        "'tflite', 'edgeship_runtime.backends.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = ["edgeship_runtime.backends.base", "edgeship_runtime.backends.catalog"]
    assert done.stdout.strip() == repr(loaded)


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
    assert model.backend.version == get_backend("onnxruntime").info().version


def test_onnx_run_failure_is_an_inference_error(failing_onnx: Path) -> None:
    model = load_model(str(failing_onnx))
    model.run({"x": np.zeros((1, models.FAIL_WIDTH), np.float32)})  # batch 1 fits
    with pytest.raises(InferenceError, match="ONNX Runtime failed to run the model"):
        model.run({"x": np.zeros((2, models.FAIL_WIDTH), np.float32)})


def test_onnx_backend_info() -> None:
    info = get_backend("onnxruntime").info()
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


# --------------------------------------------------- GPU providers: options and fallback

ORT_VERSION = "9.9.9"  # the engine cache directory names the ONNX Runtime version


def deployed(root: Path, name: str = "m.onnx", width: int = 4) -> Path:
    """A model where a deploy puts it: ``ROOT/blobs/<file>``."""
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    return models.add_model(root / "blobs" / name, width=width)


def chain(model: Path, **options: object) -> dict[str, dict[str, str]]:
    session = SessionOptions(providers=(TRT, CUDA, CPU), **options)  # type: ignore[arg-type]
    pairs = provider_chain([TRT, CUDA, CPU], session, str(model), ORT_VERSION)
    assert [name for name, _ in pairs] == [TRT, CUDA, CPU]
    return dict(pairs)


def test_tensorrt_caches_engines_under_the_deploy_root_per_model(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first, second = deployed(root, "a.onnx"), deployed(root, "b.onnx", width=8)
    trt = chain(first)[TRT]
    cache = Path(trt["trt_engine_cache_path"])
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_fp16_enable"] == "False"
    assert cache == root.resolve() / "cache" / "trt" / sha256_file(str(first)) / "ort9.9.9-fp32"
    assert cache.is_dir()
    other = Path(chain(second)[TRT]["trt_engine_cache_path"])
    assert other.parent.name == sha256_file(str(second)) and other.parent != cache.parent


def test_fp16_is_asked_for_and_gets_its_own_engines(tmp_path: Path) -> None:
    model = deployed(tmp_path / "root")
    fp32, fp16 = chain(model)[TRT], chain(model, trt_fp16=True)[TRT]
    assert fp16["trt_fp16_enable"] == "True"
    assert Path(fp16["trt_engine_cache_path"]).name == "ort9.9.9-fp16"
    assert fp16["trt_engine_cache_path"] != fp32["trt_engine_cache_path"]


def test_both_gpu_providers_use_one_gpu_and_the_cpu_takes_no_options(tmp_path: Path) -> None:
    options = chain(deployed(tmp_path / "root"))
    assert options[TRT]["device_id"] == options[CUDA]["device_id"]
    assert options[CPU] == {}


def test_without_the_cache_nothing_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    trt = chain(deployed(root), trt_cache=False)[TRT]
    assert "trt_engine_cache_enable" not in trt and "trt_engine_cache_path" not in trt
    assert not (root / "cache").exists()


def test_a_model_outside_a_deploy_root_caches_in_the_runtime_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path / "cache"))
    model = models.add_model(tmp_path / "loose.onnx")
    cache = Path(chain(model)[TRT]["trt_engine_cache_path"])
    assert cache == (tmp_path / "cache").resolve() / "trt" / sha256_file(str(model)) / cache.name


def test_a_cache_linked_outside_the_root_is_refused(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    model = deployed(root)
    elsewhere.mkdir()
    (root / "cache").mkdir()
    (root / "cache" / "trt").symlink_to(elsewhere)
    with pytest.raises(UsageError, match=r"engine cache .* leads outside .*--no-trt-cache"):
        chain(model)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(
    bool({TRT, CUDA} & set(get_backend("onnxruntime").info().providers)),
    reason="this onnxruntime has GPU providers: there is no fallback to show",
)
def test_asking_for_gpu_providers_on_a_cpu_only_build_says_they_did_not_run(
    add_onnx: Path,
) -> None:
    """This machine's onnxruntime has no CUDA or TensorRT: the model runs on the CPU and
    the backend says which providers it asked for in vain."""
    model = load_model(str(add_onnx), options=SessionOptions(providers=(TRT, CUDA, CPU)))
    assert model.backend.providers == [CPU]
    assert model.backend.providers_not_run == [TRT, CUDA]
    plain = load_model(str(add_onnx))
    assert plain.backend.providers_not_run == []


def test_a_provider_that_fails_to_start_is_named() -> None:
    """ONNX Runtime drops a listed provider that cannot start (TensorRT without its
    libraries) and goes on with the next: only the session's own list tells."""

    class FellBack:
        def get_inputs(self) -> list[object]:
            return []

        def get_outputs(self) -> list[object]:
            return []

        def get_providers(self) -> list[str]:
            return [CUDA, CPU]

    session = OrtSession(FellBack(), (TRT, CUDA, CPU))
    assert session.execution() == {"providers": [CUDA, CPU], "not_run": [TRT]}


def test_tensorrt_knobs_refine_a_session_without_choosing_one() -> None:
    assert not SessionOptions(trt_cache=False, trt_fp16=True).chooses_session()
    assert SessionOptions(threads=2).chooses_session()
    board = SessionOptions(threads=6, providers=(TRT, CUDA, CPU))
    refined = SessionOptions(trt_fp16=True).refining(board)
    assert refined == SessionOptions(threads=6, providers=(TRT, CUDA, CPU), trt_fp16=True)


def test_onnxruntime_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "onnxruntime")
    info = get_backend("onnxruntime").info()
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
    info = get_backend("tflite").info()
    assert info.available
    assert info.providers == ("XNNPACK",)
    assert info.module == "ai_edge_litert.interpreter"


def test_tflite_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "ai_edge_litert.interpreter", "tflite_runtime.interpreter")
    info = get_backend("tflite").info()
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
    info = get_backend("tflite").info()
    if info.available:  # tflite_runtime happens to be installed too
        assert info.module == "tflite_runtime.interpreter"
    else:
        assert "tflite_runtime.interpreter" in str(info.reason)


def test_a_missing_tflite_backend_does_not_stop_onnx(
    monkeypatch: pytest.MonkeyPatch, add_onnx: Path
) -> None:
    hide_modules(monkeypatch, "ai_edge_litert.interpreter", "tflite_runtime.interpreter")
    assert load_model(str(add_onnx)).backend.name == "onnxruntime"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formats": ()}, "formats must not be empty"),
        ({"packages": ()}, "packages must not be empty"),
        ({"adapter": "edgeship_runtime.backends.onnxruntime"}, "adapter must be 'module:attr"),
        ({"accelerators": ("NpuExecutionProvider",)}, "accelerator NpuExecutionProvider is not a"),
    ],
)
def test_a_malformed_entry_is_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"backend 'onnxruntime': {message}"):
        replace(get_entry("onnxruntime"), **change)


def test_idle_spin_off_lets_the_threads_sleep_as_a_run_ends(tmp_path: Path) -> None:
    """An A/B's idle model must not spin on the timed one's CPUs: ONNX Runtime's pool is
    told to stop spinning at the end of each run, and uses no CPU while idle."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "wide_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256])],
        initializer=[models.scaled_weight(rng, "w", 256, 256)],
    )
    path = str(models.save_graph(graph, tmp_path / "wide.onnx"))
    feeds = {"x": rng.standard_normal((64, 256)).astype(np.float32)}
    sleeps = load_model(path, options=SessionOptions(threads=2, idle_spin=False))
    assert _config_entry(sleeps, "session.force_spinning_stop") == "1"
    for _ in range(20):
        sleeps.session.run(feeds)
    started = time.process_time()
    time.sleep(0.2)
    assert time.process_time() - started < 0.005
    spins = load_model(path, options=SessionOptions(threads=2))
    with pytest.raises(Exception, match="does not have configuration"):  # ORT's default: spin
        _config_entry(spins, "session.force_spinning_stop")


def _config_entry(model: LoadedModel, key: str) -> str:
    options = model.session._session.get_session_options()  # type: ignore[attr-defined]
    return str(options.get_session_config_entry(key))
