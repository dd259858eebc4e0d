"""TensorRT's options (``--trt-cache``/``--trt-fp16``) from the command line to the device's
session, and the line a profile prints when the GPU providers it asked for did not run.

This machine's onnxruntime has only the CPU provider: what is proven here is the plumbing
and the fallback; the GPU path itself is ``test_profiles_cuda.py``'s (skipped without one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest

from edgeship import ProfileReport
from edgeship.core.config import ProfileConfig
from edgeship.targets import LocalTarget, Target, wire
from edgeship.targets.profiles import BoardProfile, get_profile
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.ops import Runtime
from tests.sdk.conftest import Run

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
QUICK = ["--runs", "3", "--warmup", "1", "--fixed-warmup", "--threads", "1", "--min-seconds", "0"]
cpu_only = pytest.mark.skipif(
    bool({TRT, CUDA} & set(onnxruntime.get_available_providers())),
    reason="this onnxruntime has GPU providers: there is no fallback to show",
)


class JetsonLike(LocalTarget):
    def board_profile(self) -> BoardProfile | None:
        return get_profile("jetson-orin-nano")


def test_the_options_cross_the_protocol_into_the_session(add_onnx: Path) -> None:
    session = SessionOptions(providers=(TRT, CPU), trt_cache=False, trt_fp16=True)
    args = wire.load(str(add_onnx), ProfileConfig(session=session)).args
    assert (args["trt_cache"], args["trt_fp16"]) == (False, True)
    runtime = Runtime()
    try:
        handle = runtime.load(args)["handle"]
        assert runtime._models[handle].extra["session_options"] == session
    finally:
        runtime.close()


def test_an_older_host_gets_the_defaults(add_onnx: Path) -> None:
    """A ``load`` without the TensorRT keys: engines cached, fp32."""
    runtime = Runtime()
    try:
        handle = runtime.load({"path": str(add_onnx)})["handle"]
        assert runtime._models[handle].extra["session_options"] == SessionOptions()
    finally:
        runtime.close()


def test_tensorrt_flags_refine_the_board_providers(add_onnx: Path) -> None:
    mine = ProfileConfig(session=SessionOptions(trt_fp16=True, trt_cache=False))
    session = JetsonLike().settings_for(add_onnx, mine).session
    assert session.providers == (TRT, CUDA, CPU) and session.threads == 6
    assert (session.trt_fp16, session.trt_cache) == (True, False)


@cpu_only
def test_profile_warns_when_the_gpu_providers_did_not_run(edgeship: Run, add_onnx: Path) -> None:
    providers = f"{TRT},{CUDA},{CPU}"
    rc, out, err = edgeship("profile", add_onnx, *QUICK, "--providers", providers, "--trt-fp16")
    assert rc == 0, err
    warning = [line for line in out.splitlines() if "asked for, not run" in line]
    assert warning == [
        f"warning: add.onnx: {TRT}, {CUDA} asked for, not run (absent or failed to start): "
        f"these figures are {CPU}'s"
    ]
    rc, out, err = edgeship("profile", add_onnx, *QUICK, "--providers", providers, "--json")
    assert rc == 0, err
    (report,) = [ProfileReport.from_dict(d) for d in json.loads(out)]
    assert report.backend.providers == [CPU]
    assert report.backend.providers_not_run == [TRT, CUDA]


def test_a_cpu_run_has_no_fallback_line(edgeship: Run, add_onnx: Path) -> None:
    rc, out, err = edgeship("profile", add_onnx, *QUICK)
    assert rc == 0, err
    assert "not run" not in out


@cpu_only
def test_asking_only_for_tensorrt_where_it_is_absent_is_one_line(
    edgeship: Run, add_onnx: Path
) -> None:
    rc, out, err = edgeship("profile", add_onnx, *QUICK, "--providers", TRT)
    assert rc != 0 and out == ""
    assert f"none of the requested execution providers ['{TRT}'] is available" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--trt-fp16", "--no-trt-cache", "--trt-cache"])
def test_tensorrt_flags_without_tensorrt_are_a_mistake(
    edgeship: Run, add_onnx: Path, flag: str
) -> None:
    rc, _, err = edgeship("profile", add_onnx, *QUICK, "--providers", CUDA, flag)
    assert rc != 0
    assert f"--trt-cache/--trt-fp16 act on {TRT}, which --providers leaves out" in err
    assert "Traceback" not in err


def _command(name: str, model: Path, tmp_path: Path, with_trt: bool = True) -> list[str | Path]:
    """A command that opens sessions, at its quickest, with TensorRT first or CPU alone."""
    chain = f"{TRT},{CPU}" if with_trt else CPU
    np.savez(tmp_path / "x.npz", x=np.ones((2, 4), np.float32))
    quick_ab = ["--runs", "8", "--sessions", "6", "--block", "2", "--warmup", "1", "--no-memory",
                "--min-seconds", "0"]  # fmt: skip
    quick_tune = ["--threads", "1", "--modes", "sequential", "--rounds", "1", "--no-store",
                  "--min-seconds", "0"]  # fmt: skip
    return {
        "profile": ["profile", model, *QUICK],
        "ab": ["ab", model, model, *quick_ab],
        "run": ["run", model, "--inputs", tmp_path / "x.npz", "--out", tmp_path / "y.npz"],
        "tune": ["tune", model, *quick_tune, "--runs", "3", "--warmup", "1"],
    }[name] + ["--providers", chain]


@pytest.mark.parametrize("command", ["profile", "ab", "run", "tune"])
def test_every_measuring_command_carries_the_tensorrt_flags_to_the_session(
    edgeship: Run, add_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """What the host sent in each ``load``, opened by the runtime as the device does:
    every session that asks for TensorRT has its cache off and fp16 on."""
    loads: list[dict[str, Any]] = []
    request = Target.request

    def spy(target: Target, sent: wire.Request) -> Any:
        if sent.op == "load":
            loads.append(dict(sent.args))
        return request(target, sent)

    monkeypatch.setattr(Target, "request", spy)
    args = _command(command, add_onnx, tmp_path)
    rc, _, err = edgeship(*args, "--no-trt-cache", "--trt-fp16")
    assert rc == 0, err
    asked = [args for args in loads if TRT in args.get("providers", ())]
    assert asked, loads
    runtime = Runtime()
    try:
        for args in asked:
            handle = runtime.load(args)["handle"]
            options = runtime._models[handle].extra["session_options"]
            assert (options.trt_cache, options.trt_fp16) == (False, True)
    finally:
        runtime.close()


@pytest.mark.parametrize("command", ["ab", "run", "tune"])
def test_tensorrt_flags_where_providers_leave_it_out_are_a_mistake_on_every_command(
    edgeship: Run, add_onnx: Path, tmp_path: Path, command: str
) -> None:
    args = _command(command, add_onnx, tmp_path, with_trt=False)
    rc, _, err = edgeship(*args, "--trt-fp16")
    assert rc == 2
    assert f"--trt-cache/--trt-fp16 act on {TRT}, which --providers leaves out" in err
    assert "Traceback" not in err
