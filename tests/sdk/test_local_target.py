"""LocalTarget: the real runtime zipapp in a subprocess, as a board would run it."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeship import ProfileConfig, ProfileReport
from edgeship.core.config import Timeouts
from edgeship.core.errors import InputError, ModelError, RemoteTimeout, RuntimeCrashed, TargetError
from edgeship.targets.bundle import ensure_bundle
from edgeship.targets.local import LocalPipe, LocalTarget
from edgeship_runtime.measure import MeasurePolicy
from tests import external_data

QUICK = ProfileConfig(policy=MeasurePolicy(warmup=1, runs=5, min_seconds=0))


@pytest.fixture
def target() -> Iterator[LocalTarget]:
    tgt = LocalTarget()
    with tgt:
        yield tgt


def runtime_pipe(target: LocalTarget) -> LocalPipe:
    pipe = target.client().pipe
    assert isinstance(pipe, LocalPipe)
    return pipe


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def test_the_zipapp_is_what_runs(target: LocalTarget) -> None:
    info = target.info()
    runtime = info["runtime"]
    assert runtime["protocol"] == 2
    assert info["target"] == {"name": "local", "kind": "local", "python": target.python}
    pipe = runtime_pipe(target)
    assert runtime["pid"] == pipe.process.pid == target.client().hello["pid"]
    argv = cmdline(runtime["pid"])
    assert argv[1] == str(ensure_bundle()) and argv[1].endswith(".pyz")
    assert argv[2] == "serve"
    assert os.path.realpath(runtime["executable"]) == os.path.realpath(target.python)
    assert {b["name"]: b["available"] for b in info["backends"]} == {
        "onnxruntime": True,
        "tflite": True,
    }


def test_profile_returns_a_typed_report_that_round_trips(
    target: LocalTarget, add_onnx: Path
) -> None:
    report = target.profile(add_onnx, QUICK)
    assert isinstance(report, ProfileReport)
    assert report.latency_ms.n == 5
    assert report.model.path == str(add_onnx)
    assert report.target is not None
    assert (report.target["name"], report.target["kind"]) == ("local", "local")
    assert ProfileReport.from_json(report.to_json()) == report


def test_one_runtime_serves_many_models(
    target: LocalTarget, add_onnx: Path, multi_input_onnx: Path, state_onnx: Path
) -> None:
    pid = target.info()["runtime"]["pid"]
    seq = {"features": (1, 3, 8), "token_ids": (1, 3)}  # a dynamic length is never guessed
    for model, shapes in ((add_onnx, {}), (multi_input_onnx, seq), (state_onnx, {})):
        config = dataclasses.replace(QUICK, shapes=shapes)
        assert target.profile(model, config).model.path == str(model)
    assert target.info()["runtime"]["pid"] == pid


def test_profile_tflite_keeps_stdout_clean(target: LocalTarget, tiny_tflite: Path) -> None:
    """LiteRT announces its XNNPACK delegate natively: the runtime drops that notice, and
    nothing reaches stdout."""
    report = target.profile(tiny_tflite, QUICK)  # a stray stdout line would be a ProtocolError
    assert report.backend.delegates == ["XNNPACK"]
    pipe = runtime_pipe(target)
    target.info()  # one more round trip after the delegate was created
    assert "INFO: Created TensorFlow Lite" not in pipe.stderr_tail()


def test_run_returns_outputs_by_name(target: LocalTarget, add_onnx: Path) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    outputs = target.run(add_onnx, {"x": x})
    assert list(outputs) == ["y"]
    np.testing.assert_array_equal(outputs["y"], x + 1)


def test_device_errors_keep_the_runtime(target: LocalTarget, add_onnx: Path) -> None:
    pid = target.info()["runtime"]["pid"]
    with pytest.raises(InputError, match="input 'x': shape"):
        target.run(add_onnx, {"x": np.zeros((1, 3), np.float32)})
    assert target.run(add_onnx, {"x": np.zeros((1, 4), np.float32)})["y"].shape == (1, 4)
    assert target.info()["runtime"]["pid"] == pid


def test_missing_model_is_a_model_error(target: LocalTarget, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        target.profile(tmp_path / "absent.onnx")


def test_close_ends_the_runtime(add_onnx: Path) -> None:
    target = LocalTarget()
    target.profile(add_onnx, QUICK)
    pipe = runtime_pipe(target)
    target.close()
    assert pipe.process.poll() == 0


def test_hung_runtime_times_out_and_is_killed(add_onnx: Path) -> None:
    target = LocalTarget(timeouts=Timeouts(command=30.0))
    endless = ProfileConfig(policy=MeasurePolicy(warmup=0, runs=1, min_seconds=60.0))
    with target:
        pipe = runtime_pipe(target)
        with target.load(add_onnx, endless) as loaded:
            target.client().timeout = 0.5
            with pytest.raises(RemoteTimeout, match=r"local: profile took longer than 0.5 s"):
                loaded.profile()
        # no unload was attempted on the dead runtime (it would have raised), and it is gone
        assert pipe.process.poll() == -signal.SIGKILL
        # the target starts a fresh runtime for the next request
        assert target.profile(add_onnx, QUICK).latency_ms.n == 5
        assert target.client().pipe is not pipe


def test_stopped_runtime_times_out(target: LocalTarget) -> None:
    pipe = runtime_pipe(target)
    os.kill(pipe.process.pid, signal.SIGSTOP)
    with pytest.raises(RemoteTimeout, match="info took longer"):
        target.client().call("info", {}, timeout=0.5)  # the raw client: no fresh start
    assert pipe.process.poll() == -signal.SIGKILL


def test_killed_runtime_is_a_crash_with_its_exit_status(add_onnx: Path) -> None:
    target = LocalTarget()
    endless = ProfileConfig(policy=MeasurePolicy(warmup=0, runs=1, min_seconds=30.0))
    with target:
        pipe = runtime_pipe(target)
        with target.load(add_onnx, endless) as loaded:
            killer = threading.Timer(0.3, os.kill, (pipe.process.pid, signal.SIGKILL))
            killer.start()
            try:
                with pytest.raises(RuntimeCrashed) as info:
                    loaded.profile()
            finally:
                killer.cancel()
        crash = info.value
        assert crash.exit_status == -signal.SIGKILL
        assert "local: the runtime died during profile (exit status -9, SIGKILL" in str(crash)
        assert crash.details["exit_status"] == -9
        assert pipe.process.poll() == -signal.SIGKILL
        assert target.profile(add_onnx, QUICK).latency_ms.n == 5  # and it recovers


def test_profile_after_a_crash_is_not_masked_by_unload(add_onnx: Path) -> None:
    """Target.profile itself: the crash surfaces as RuntimeCrashed, not as unload's error."""
    target = LocalTarget()
    endless = ProfileConfig(policy=MeasurePolicy(warmup=0, runs=1, min_seconds=30.0))
    with target:
        pipe = runtime_pipe(target)
        target.client().timeout = 1.0
        with pytest.raises((RuntimeCrashed, RemoteTimeout)) as info:
            target.profile(add_onnx, endless)
        assert "during unload" not in str(info.value)
        assert pipe.process.poll() is not None


def test_runtime_that_dies_at_start_up(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no runtime here' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeCrashed, match=r"during start-up \(exit status 3\): no runtime here"):
        LocalTarget(python=str(fake)).info()


def test_missing_interpreter_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"local: cannot start the runtime with .*/nope: No such"):
        LocalTarget(python=str(tmp_path / "nope")).info()


def test_profile_and_run_onnx_with_external_data(target: LocalTarget, tmp_path: Path) -> None:
    model = external_data.external_data_model(tmp_path / "big.onnx")
    report = target.profile(model, QUICK)
    assert report.latency_ms.n == 5 and report.model.format == "onnx"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(target.run(model, {"x": x})["y"], external_data.expected(x))


def test_external_data_in_subdirectories_loads_from_a_symlinked_model(
    target: LocalTarget, tmp_path: Path
) -> None:
    """The runtime opens the resolved file: its companions are looked for beside that."""
    (tmp_path / "store").mkdir()
    model = external_data.external_data_model(
        tmp_path / "store" / "m.onnx", {"W": "weights/w.bin", "b": "b.bin"}
    )
    (tmp_path / "link.onnx").symlink_to(model)
    x = np.ones((1, 4), np.float32)
    outputs = target.run(tmp_path / "link.onnx", {"x": x})
    np.testing.assert_allclose(outputs["y"], external_data.expected(x))


def test_missing_external_data_is_named(target: LocalTarget, tmp_path: Path) -> None:
    model = external_data.external_data_model(tmp_path / "big.onnx")
    (tmp_path / "big.onnx.data").unlink()
    with pytest.raises(ModelError, match=r"companion file big\.onnx\.data is missing"):
        target.profile(model, QUICK)


def test_a_stopped_runtime_is_ended_within_the_unresponsive_time() -> None:
    """Stopped (SIGSTOP), the runtime answers nothing: after ``--unresponsive`` s of
    silence the client looks, finds it stopped and ends it, long before ``--timeout``."""
    with LocalTarget(timeouts=Timeouts(command=60.0, unresponsive=1.0)) as target:
        pipe = runtime_pipe(target)
        os.kill(pipe.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(RemoteTimeout, match=r"stopped \(frozen\).* 1 s \(--unresponsive\)"):
            target.client().call("info", {})  # the raw client: no fresh start
        took = time.monotonic() - started
        assert took < 1 + 2, took
        assert pipe.process.poll() == -signal.SIGKILL
