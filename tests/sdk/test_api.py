"""The Python API: ``edgeship.profile`` / ``run`` / ``info`` against the real local runtime."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgeship
from edgeship import LocalTarget, ProfileReport
from edgeship.ab import Schedule, make_gate
from edgeship.core.errors import BackendUnavailable, InputError, UsageError
from edgeship.targets.profiles import BoardProfile, get_profile
from tests import models

PUBLIC_API = {
    # the CLI's commands, as functions
    "ab",
    "compress",
    "convert",
    "deploy",
    "info",
    "profile",
    "run",
    # what they take and give back
    "ABConfig",
    "ABReport",
    "ChainConfig",
    "ChannelPruneConfig",
    "CompressOptions",
    "CompressionResult",
    "ConnectOptions",
    "ConversionResult",
    "ConvertConfig",
    "Deployment",
    "DistillConfig",
    "ProfileConfig",
    "ProfileReport",
    "PruneConfig",
    "QuantizeConfig",
    "Timeouts",
    "make_gate",
    # targets, errors, version
    "EdgeshipError",
    "LocalTarget",
    "Target",
    "open_target",
    "__version__",
}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalTarget]:
    """One runtime for the module, borrowed by each call (the API does not close it)."""
    target = LocalTarget()
    with target:
        yield target


def ort_outputs(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_public_api() -> None:
    foundation = {"ProfileReport", "LocalTarget", "Target", "profile", "run", "info"}
    assert foundation <= set(edgeship.__all__)
    params = inspect.signature(edgeship.profile).parameters
    assert list(params)[:2] == ["model", "target"]
    assert all(p.kind is p.KEYWORD_ONLY for p in list(params.values())[2:])


def test_public_api_is_pinned() -> None:
    """Adding to or removing from ``edgeship.__all__`` is a decision: change it here too."""
    assert set(edgeship.__all__) == PUBLIC_API
    assert len(edgeship.__all__) == len(PUBLIC_API)
    for name in PUBLIC_API:
        assert getattr(edgeship, name) is not None


@pytest.mark.parametrize(
    ("function", "leading"),
    [
        ("deploy", ["models", "target"]),
        ("ab", ["base", "variants", "target"]),
        ("convert", ["config", "target"]),
        ("compress", ["model", "config", "data", "out", "options"]),
    ],
)
def test_command_functions_take_what_the_cli_takes(function: str, leading: list[str]) -> None:
    params = inspect.signature(getattr(edgeship, function)).parameters
    assert list(params)[: len(leading)] == leading
    assert all(p.kind is p.KEYWORD_ONLY for p in list(params.values())[len(leading) :])


def test_subpackages_stay_importable_beside_the_functions_of_their_names() -> None:
    """``edgeship.ab`` is the function; ``from edgeship.ab import ...`` is the package."""
    from edgeship.ab import ABConfig
    from edgeship.compress import QuantizeConfig
    from edgeship.convert import ConvertConfig
    from edgeship.deploy import Deployment

    assert (ABConfig, QuantizeConfig, ConvertConfig, Deployment) == (
        edgeship.ABConfig,
        edgeship.QuantizeConfig,
        edgeship.ConvertConfig,
        edgeship.Deployment,
    )
    assert all(callable(f) for f in (edgeship.ab, edgeship.compress, edgeship.convert))


def test_a_subpackage_imported_later_does_not_replace_its_function() -> None:
    """:mod:`edgeship.deploy` loads when an SSH target opens, after ``import edgeship``;
    the import system then sets it on the package, where ``edgeship.deploy`` must stay
    the function. A fresh interpreter, as this one has long imported everything."""
    code = (
        "import sys, edgeship; assert 'edgeship.deploy' not in sys.modules; "
        "import edgeship.targets.ssh, edgeship.deploy.store; "
        "from edgeship.deploy import Deployment; "
        "print(edgeship.deploy.__module__, edgeship.Deployment is Deployment)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["edgeship.api", "True"]


def test_profile_report_has_every_required_field(add_onnx: Path) -> None:
    report = edgeship.profile(
        add_onnx, runs=20, warmup=2, samples=True, min_seconds=0
    )  # target "local"
    assert isinstance(report, ProfileReport)
    assert report.model.sha256 == hashlib.sha256(add_onnx.read_bytes()).hexdigest()
    assert report.model.format == "onnx"
    assert report.model.size_bytes == add_onnx.stat().st_size
    assert report.model.path == str(add_onnx)
    assert report.backend.name == "onnxruntime"
    assert report.backend.version == ort.__version__
    assert report.backend.providers == ["CPUExecutionProvider"]
    assert report.load_ms > 0
    assert report.first_inference_ms > 0
    lat = report.latency_ms
    assert lat.n == 20
    assert 0 < lat.min <= lat.p50 <= lat.p90 <= lat.p95 <= lat.p99 <= lat.max
    assert lat.std >= 0
    assert report.samples_ms is not None and len(report.samples_ms) == 20
    assert sorted(report.samples_ms)[0] == lat.min
    mem = report.memory_mb
    assert 0 < mem.rss_before_load <= mem.peak_rss
    assert mem.rss_after_load <= mem.peak_rss
    assert mem.method.startswith("VmHWM")
    env = report.environment
    assert env.hostname == socket.gethostname()
    assert env.python == platform.python_version()
    assert env.arch == platform.machine()
    assert env.logical_cores == os.cpu_count()
    assert 1 <= env.usable_cores <= env.logical_cores
    assert env.total_memory_mb > 0
    assert env.os and env.cpu_model
    assert [(o.name, o.shape, o.dtype, o.all_finite) for o in report.outputs] == [
        ("y", [1, 4], "float32", True)
    ]
    assert report.policy.runs == 20 and report.policy.warmup == 2
    assert report.batch_size == 1
    assert report.throughput_ips > 0
    assert report.runtime_version == edgeship.__version__
    assert report.target is not None and report.target["kind"] == "local"
    assert report.created_at.endswith("+00:00")


def test_no_samples_unless_asked(local: LocalTarget, add_onnx: Path) -> None:
    assert edgeship.profile(add_onnx, local, runs=3, min_seconds=0).samples_ms is None


def test_run_equals_onnxruntime(local: LocalTarget, multi_input_onnx: Path) -> None:
    rng = np.random.default_rng(7)
    feeds: dict[str, np.ndarray] = {
        "features": rng.standard_normal((2, 5, models.WIDTH)).astype(np.float32),
        "token_ids": rng.integers(0, models.VOCAB, (2, 5)).astype(np.int64),
    }
    outputs = edgeship.run(multi_input_onnx, feeds, local)
    expected = ort_outputs(multi_input_onnx, feeds)
    assert list(outputs) == ["out", "pooled"]
    for name, value in expected.items():
        np.testing.assert_array_equal(outputs[name], value)
    np.testing.assert_allclose(
        outputs["out"], feeds["features"] + models.EMBEDDING[feeds["token_ids"]], rtol=1e-6
    )


def test_state_model_steps(local: LocalTarget, state_onnx: Path) -> None:
    """Feed h_out back as h_in: the device agrees with onnxruntime and with numpy."""
    rng = np.random.default_rng(3)
    h = np.zeros((2, models.STATE_HIDDEN), np.float32)
    for _ in range(3):
        x = rng.standard_normal((2, models.STATE_IN)).astype(np.float32)
        out = edgeship.run(state_onnx, {"x": x, "h_in": h}, local, threads=1)
        expected = ort_outputs(state_onnx, {"x": x, "h_in": h})
        np.testing.assert_array_equal(out["h_out"], expected["h_out"])
        np.testing.assert_array_equal(out["y"], expected["y"])
        y, h_next = models.state_step(x, h)
        np.testing.assert_allclose(out["y"], y, rtol=1e-5, atol=1e-6)
        h = out["h_out"]
        np.testing.assert_allclose(h, h_next, rtol=1e-5, atol=1e-6)


def test_run_checks_inputs(local: LocalTarget, add_onnx: Path) -> None:
    with pytest.raises(InputError, match="input 'x': dtype int64, expected float32"):
        edgeship.run(add_onnx, {"x": np.zeros((1, 4), np.int64)}, local)


def test_multi_input_dynamic_int64_model(local: LocalTarget, multi_input_onnx: Path) -> None:
    shapes = {"features": [4, 6, models.WIDTH], "token_ids": [4, 6]}
    report = edgeship.profile(multi_input_onnx, local, runs=5, shapes=shapes, min_seconds=0)
    assert [(t.name, t.shape, t.dtype) for t in report.inputs] == [
        ("features", [4, 6, models.WIDTH], "float32"),
        ("token_ids", [4, 6], "int64"),
    ]
    assert [(t.name, t.shape) for t in report.outputs] == [
        ("out", [4, 6, models.WIDTH]),
        ("pooled", [4, models.WIDTH]),
    ]
    assert report.batch_size == 4


def test_state_model_with_cli_style_shapes(local: LocalTarget, state_onnx: Path) -> None:
    report = edgeship.profile(
        state_onnx, local, runs=5, shapes=["x=3,4", "h_in=3,8"], min_seconds=0
    )
    assert [t.shape for t in report.inputs] == [[3, 4], [3, 8]]
    assert [t.shape for t in report.outputs] == [[3, 2], [3, 8]]


def test_inputs_file(local: LocalTarget, state_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "state.npz"
    np.savez(path, x=np.ones((5, 4), np.float32), h_in=np.zeros((5, 8), np.float32))
    report = edgeship.profile(state_onnx, local, runs=3, inputs=path, min_seconds=0)
    assert report.batch_size == 5


def test_tflite_model(local: LocalTarget, tiny_tflite: Path) -> None:
    report = edgeship.profile(tiny_tflite, local, runs=5, threads=1, shapes=None, min_seconds=0)
    assert report.model.format == "tflite"
    assert report.backend.name == "tflite"
    assert report.backend.delegates == ["XNNPACK"]
    assert report.backend.threads == 1
    assert [t.dtype for t in report.inputs] == ["float32", "int64"]
    assert report.outputs[0].all_finite is True


def test_info(local: LocalTarget) -> None:
    data = edgeship.info(local)
    assert data["runtime"]["version"] == edgeship.__version__
    assert data["target"]["kind"] == "local"


def test_bad_policy_is_refused_before_any_device_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="runs must be at least 1"):
        edgeship.profile(tmp_path / "never-read.onnx", runs=0, min_seconds=0)


def test_borrowed_target_stays_open(local: LocalTarget, add_onnx: Path) -> None:
    pid = edgeship.info(local)["runtime"]["pid"]
    edgeship.profile(add_onnx, local, runs=1, min_seconds=0)
    assert edgeship.info(local)["runtime"]["pid"] == pid


# ------------------------------------------------------------------------ deploy, ab, convert


def test_deploy_refuses_models_that_would_share_a_name(tmp_path: Path, add_onnx: Path) -> None:
    (tmp_path / "a").mkdir()
    twin = tmp_path / "a" / add_onnx.name
    twin.write_bytes(add_onnx.read_bytes())
    with pytest.raises(UsageError, match=r"would both be deployed as 'add'.*--name"):
        edgeship.deploy([add_onnx, twin], "never-opened")


def test_deploy_on_local(add_onnx: Path, tmp_path: Path) -> None:
    with LocalTarget(deploy_root=str(tmp_path / "root")) as local:
        (deployed,) = edgeship.deploy(add_onnx, local, health=None)
    assert (deployed.name, deployed.version) == ("add", "v0001")
    assert Path(deployed.path).read_bytes() == add_onnx.read_bytes()


def test_ab_on_local(add_onnx: Path) -> None:
    config = edgeship.ABConfig(
        schedule=Schedule(runs=40, sessions=6, block=10, warmup=2, min_seconds=0.01),
        gates=(make_gate("max-size-ratio", 1.0),),
        memory=False,
    )
    report = edgeship.ab(add_onnx, [add_onnx], "local", config=config)
    assert isinstance(report, edgeship.ABReport)
    (device,) = report.devices
    assert device.target["kind"] == "local"
    (comparison,) = device.comparisons
    assert comparison.size_ratio == 1.0
    assert report.passed and [g.gate for g in report.gates] == ["max-size-ratio"]


def test_convert_runs_on_the_named_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, add_onnx: Path
) -> None:
    seen: list[edgeship.Target] = []

    def fake(config: edgeship.ConvertConfig, target: edgeship.Target) -> str:
        seen.append(target)
        return "converted"

    # the API imports the conversion package when convert() is called
    monkeypatch.setattr(importlib.import_module("edgeship.convert"), "convert", fake)
    config = edgeship.ConvertConfig(source=str(add_onnx), output=str(tmp_path / "add.tflite"))
    assert edgeship.convert(config) == "converted"
    assert [t.kind for t in seen] == ["local"]


class _Device(LocalTarget):
    """A local runtime dressed as a device that ``edgeship setup`` can prepare."""

    kind = "ssh"
    capabilities = frozenset({"deploy", "probe", "setup"})


@pytest.fixture(scope="module")
def python_without_onnxruntime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This Python, with ``import onnxruntime`` failing as on a board before setup."""
    root = tmp_path_factory.mktemp("no-ort")
    (root / "onnxruntime").mkdir()
    (root / "onnxruntime" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'onnxruntime'\")\n"
    )
    wrapper = root / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_no_backend_on_a_device_says_to_set_it_up(
    python_without_onnxruntime: Path, add_onnx: Path
) -> None:
    device = _Device(python=str(python_without_onnxruntime))
    with device, pytest.raises(BackendUnavailable) as caught:
        edgeship.profile(add_onnx, device, runs=1, min_seconds=0)
    message = str(caught.value)
    assert message.startswith("local: no installed backend can run onnx models (onnxruntime: ")
    assert message.endswith(
        "; run `edgeship setup local` first (or pass --python, a Python on the device that has it)"
    )


class _Armv7Board(_Device):
    """A set-up 32-bit ARM board: its profile installs LiteRT only."""

    def board_profile(self) -> BoardProfile | None:
        return get_profile("generic-armv7l")


def test_a_board_whose_profile_has_no_backend_for_the_format_is_not_told_to_set_up(
    python_without_onnxruntime: Path, add_onnx: Path
) -> None:
    device = _Armv7Board(python=str(python_without_onnxruntime))
    with device, pytest.raises(BackendUnavailable) as caught:
        edgeship.profile(add_onnx, device, runs=1, min_seconds=0)
    message = str(caught.value)
    assert message.endswith(
        "; the board profile generic-armv7l has no backend for onnx models (it installs "
        "tflite): convert the model to a format it runs"
    )
    assert "edgeship setup" not in message


def test_no_backend_here_is_left_as_it_is(python_without_onnxruntime: Path, add_onnx: Path) -> None:
    here = LocalTarget(python=str(python_without_onnxruntime))
    with here, pytest.raises(BackendUnavailable) as caught:
        edgeship.profile(add_onnx, here, runs=1, min_seconds=0)
    assert str(caught.value).startswith("local: no installed backend can run onnx models")
    assert "edgeship setup" not in str(caught.value)
