"""The stdio protocol, in memory: ``service.serve`` over BytesIO stdin/stdout."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship_runtime import __version__, protocol, service
from edgeship_runtime.errors import ProtocolError
from edgeship_runtime.ops import decode_tensors, encode_tensors
from edgeship_runtime.report import REPORT_SCHEMA, ProfileReport


def serve(*messages: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    """Feed ``messages`` (dicts, or raw lines) to a fresh service; every line it wrote."""
    lines = [m if isinstance(m, bytes) else protocol.encode(m) for m in messages]
    stdin, stdout = io.BytesIO(b"".join(lines)), io.BytesIO()
    assert service.serve(stdin, stdout) == 0
    out = stdout.getvalue()
    assert out.endswith(b"\n")
    return [json.loads(line) for line in out.splitlines()]


def req(request_id: int, op: str, **args: Any) -> dict[str, Any]:
    return protocol.request(request_id, op, args)


def test_hello_comes_first_with_protocol_and_pid() -> None:
    hello, *rest = serve()
    assert rest == []
    assert hello["edgeship"] == "runtime"
    assert hello["protocol"] == protocol.PROTOCOL_VERSION == 1
    assert hello["version"] == __version__
    assert hello["pid"] == os.getpid()
    assert hello["pgid"] == os.getpgid(0)
    protocol.check_hello(hello)


def test_info() -> None:
    _, reply = serve(req(1, "info"))
    assert reply["id"] == 1 and reply["ok"] is True
    result = reply["result"]
    assert result["runtime"]["protocol"] == 1
    assert result["runtime"]["pid"] == os.getpid()
    assert [b["name"] for b in result["backends"]] == ["onnxruntime", "tflite"]
    assert result["environment"]["logical_cores"] >= 1


def test_load_profile_run_unload(add_onnx: Path) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    _, load, prof, run, unload, again = serve(
        req(1, "load", path=str(add_onnx), threads=1),
        req(2, "profile", handle="m1", runs=5, warmup=1, samples=True),
        req(3, "run", handle="m1", inputs=encode_tensors({"x": x})),
        req(4, "unload", handle="m1"),
        req(5, "run", handle="m1", inputs=encode_tensors({"x": x})),
    )
    assert [r["id"] for r in (load, prof, run, unload, again)] == [1, 2, 3, 4, 5]
    assert load["result"]["handle"] == "m1"
    assert load["result"]["signature"]["inputs"] == [
        {"name": "x", "shape": ["batch", 4], "dtype": "float32"}
    ]
    assert load["result"]["backend"]["threads"] == 1
    report = ProfileReport.from_dict(prof["result"])
    assert report.schema == REPORT_SCHEMA
    assert report.latency_ms.n == 5 and report.samples_ms is not None
    outputs = decode_tensors(run["result"]["outputs"])
    np.testing.assert_array_equal(outputs["y"], x + 1)
    assert run["result"]["latency_ms"] > 0
    assert unload == {"id": 4, "ok": True, "result": {}}
    assert again["ok"] is False
    assert again["error"]["type"] == "UsageError"
    assert "no loaded model with handle 'm1'" in again["error"]["message"]


def test_handles_are_distinct(add_onnx: Path, state_onnx: Path) -> None:
    _, a, b = serve(req(1, "load", path=str(add_onnx)), req(2, "load", path=str(state_onnx)))
    assert a["result"]["handle"] != b["result"]["handle"]


def test_error_reply_carries_type_message_and_details(tmp_path: Path) -> None:
    _, reply = serve(req(9, "load", path=str(tmp_path / "absent.onnx")))
    assert reply["id"] == 9 and reply["ok"] is False
    error = reply["error"]
    assert error["type"] == "ModelError"
    assert "no such model file" in error["message"]
    assert error["details"] == {"path": str(tmp_path / "absent.onnx")}


def test_input_error_over_the_wire(add_onnx: Path) -> None:
    bad = encode_tensors({"x": np.zeros((1, 5), np.float32)})
    _, _, reply = serve(req(1, "load", path=str(add_onnx)), req(2, "run", handle="m1", inputs=bad))
    assert reply["error"]["type"] == "InputError"
    assert reply["error"]["details"] == {"input": "x", "expected": ["batch", 4], "given": [1, 5]}


def test_inference_error_over_the_wire(failing_onnx: Path) -> None:
    _, _, reply = serve(
        req(1, "load", path=str(failing_onnx)),
        req(2, "profile", handle="m1", runs=1, warmup=0, shapes={"x": [2, 6]}),
    )
    assert reply["error"]["type"] == "InferenceError"


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b'{"id": 3, "op": "explode"}\n'],
    ids=["text", "array", "binary", "unknown-op"],
)
def test_malformed_line_gets_a_protocol_error_and_service_keeps_serving(line: bytes) -> None:
    _, bad, good = serve(line, req(4, "info"))
    assert bad["ok"] is False
    assert bad["error"]["type"] == "ProtocolError"
    assert good["id"] == 4 and good["ok"] is True


def test_blank_lines_are_skipped() -> None:
    _, reply = serve(b"\n", b"  \n", req(1, "info"))
    assert reply["id"] == 1


def test_a_bug_is_an_error_reply_not_a_dead_service(capsys: pytest.CaptureFixture[str]) -> None:
    _, bad, good = serve(req(1, "load"), req(2, "info"))  # no "path": a KeyError inside
    assert bad["ok"] is False and bad["error"]["type"] == "EdgeshipError"
    assert "KeyError" in bad["error"]["message"]
    assert good["ok"] is True
    assert "Traceback" in capsys.readouterr().err  # diagnostics go to stderr only


def test_shutdown_ends_the_service() -> None:
    _, bye, *rest = serve(req(1, "shutdown"), req(2, "info"))
    assert bye == {"id": 1, "ok": True, "result": {"shutdown": True}}
    assert rest == []


def test_check_hello_rejects_another_protocol() -> None:
    hello = protocol.hello()
    hello["protocol"] = 2
    with pytest.raises(ProtocolError, match="runtime speaks protocol 2, this host speaks 1"):
        protocol.check_hello(hello)


def test_check_hello_rejects_something_else() -> None:
    with pytest.raises(ProtocolError, match="expected the runtime's hello"):
        protocol.check_hello({"hello": "world"})


def test_encode_is_one_line_and_refuses_nan() -> None:
    assert protocol.encode({"a": "x\ny"}).count(b"\n") == 1
    with pytest.raises(ValueError):
        protocol.encode({"a": float("nan")})


def test_protected_stdout_sends_native_prints_to_stderr(tmp_path: Path) -> None:
    """What a native library writes to fd 1 must not land among the protocol lines."""
    code = textwrap.dedent(
        """
        import os
        from edgeship_runtime.service import protected_stdout
        out = protected_stdout()
        os.write(1, b"native noise on fd 1\\n")
        print("python noise on sys.stdout")
        out.write(b'{"protocol": "line"}\\n')
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b'{"protocol": "line"}\n'
    assert b"native noise on fd 1" in done.stderr
    assert b"python noise on sys.stdout" in done.stderr
