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

from .framed import message_bytes, read_messages


def serve(
    *messages: dict[str, Any] | bytes, max_line_bytes: int = protocol.DEFAULT_MAX_LINE_BYTES
) -> list[dict[str, Any]]:
    """Feed ``messages`` (dicts, or raw bytes) to a fresh service; every message it wrote."""
    data = [m if isinstance(m, bytes) else message_bytes(m) for m in messages]
    stdin, stdout = io.BytesIO(b"".join(data)), io.BytesIO()
    assert service.serve(stdin, stdout, max_line_bytes) == 0
    stdout.seek(0)
    return read_messages(stdout)


def req(request_id: int, op: str, **args: Any) -> dict[str, Any]:
    return protocol.request(request_id, op, args)


def test_hello_comes_first_with_protocol_and_pid() -> None:
    hello, *rest = serve()
    assert rest == []
    assert hello["edgeship"] == "runtime"
    assert hello["protocol"] == protocol.PROTOCOL_VERSION == 2
    assert hello["version"] == __version__
    assert hello["pid"] == os.getpid()
    assert hello["pgid"] == os.getpgid(0)
    protocol.check_hello(hello)


def test_info() -> None:
    _, reply = serve(req(1, "info"))
    assert reply["id"] == 1 and reply["ok"] is True
    result = reply["result"]
    assert result["runtime"]["protocol"] == 2
    assert result["runtime"]["pid"] == os.getpid()
    assert [b["name"] for b in result["backends"]] == ["onnxruntime", "tflite"]
    assert result["environment"]["logical_cores"] >= 1


def test_load_profile_run_unload(add_onnx: Path) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    _, load, prof, run, unload, again = serve(
        req(1, "load", path=str(add_onnx), threads=1),
        req(2, "profile", handle="m1", runs=5, warmup=1, samples=True, min_seconds=0),
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
        req(2, "profile", handle="m1", runs=1, warmup=0, shapes={"x": [2, 6]}, min_seconds=0),
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


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": NaN, "op": "x"}\n',
        b'{"id": Infinity, "op": "info"}\n',
        b'{"id": -Infinity, "op": "info"}\n',
        b'{"id": 1e999, "op": "info"}\n',
        b'{"id": 5, "op": "info", "args": {"x": NaN}}\n',
        b'{"id": 1.5, "op": "info"}\n',
        b'{"id": true, "op": "info"}\n',
        b'{"id": [1], "op": "info"}\n',
        b'{"id": {"a": 1}, "op": "info"}\n',
        b'{"id": ' + b"9" * 5000 + b', "op": "info"}\n',
        b'{"id": 5, "op": "info", "args": [1, 2]}\n',
        b'{"id": 5, "op": "info", "args": "x"}\n',
        b'{"id": 5, "op": ["info"]}\n',
        b'{"id": 5}\n',
        b"null\n",
        b'"info"\n',
        b"17\n",
        b"{\n",
        DEEP + b"\n",
    ],
    ids=[
        "nan-id",
        "infinity-id",
        "minus-infinity-id",
        "overflowing-id",
        "nan-in-args",
        "float-id",
        "bool-id",
        "list-id",
        "object-id",
        "huge-int-id",
        "list-args",
        "string-args",
        "list-op",
        "no-op",
        "null",
        "string",
        "number",
        "truncated",
        "deeply-nested",
    ],
)
def test_any_malformed_request_gets_an_error_reply_and_serving_goes_on(line: bytes) -> None:
    _, bad, good = serve(line, req(4, "info"))
    assert bad["ok"] is False and bad["error"]["type"] == "ProtocolError"
    assert bad["id"] in (None, 5)  # a readable, valid id is echoed; never a bad one
    assert good["id"] == 4 and good["ok"] is True


def test_a_string_id_is_echoed() -> None:
    _, reply = serve(b'{"id": "a-7", "op": "info"}\n')
    assert reply["id"] == "a-7" and reply["ok"] is True


def test_a_reply_that_json_cannot_carry_becomes_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.Runtime, "info", lambda self, args: {"x": float("nan")})
    _, bad, good = serve(req(1, "info"), req(2, "shutdown"))
    assert bad["id"] == 1 and bad["error"]["type"] == "ProtocolError"
    assert "not encodable" in bad["error"]["message"]
    assert good["result"] == {"shutdown": True}


def _padded(request: dict[str, Any], size: int) -> bytes:
    """``request`` as a line of exactly ``size`` bytes before its newline."""
    line = protocol.encode(request)[:-1]
    return line[:-1] + b" " * (size - len(line)) + b"}\n"


def test_a_line_over_the_limit_is_refused_naming_the_limit_and_serving_goes_on() -> None:
    limit = 1000
    hello, ok, too_long, after = serve(
        _padded(req(1, "info"), limit),
        _padded(req(2, "info"), limit + 1),
        req(3, "info"),
        max_line_bytes=limit,
    )
    assert hello["max_line_bytes"] == limit
    assert ok["id"] == 1 and ok["ok"] is True  # exactly at the limit: served
    assert too_long["id"] == 2  # read from the start of the line, as the host writes it
    assert too_long["ok"] is False and too_long["error"]["type"] == "ProtocolError"
    assert "over the limit of 1000 bytes" in too_long["error"]["message"]
    assert "--max-line-bytes" in too_long["error"]["message"]
    assert too_long["error"]["details"] == {"limit_bytes": limit, "line_bytes": limit + 1}
    assert after["id"] == 3 and after["ok"] is True


def test_a_too_long_line_without_a_readable_id_is_refused_with_a_null_id() -> None:
    _, too_long, after = serve(b"x" * 5000 + b"\n", req(3, "info"), max_line_bytes=100)
    assert too_long["id"] is None and too_long["error"]["details"]["line_bytes"] == 5000
    assert after["id"] == 3


def test_a_too_long_last_line_without_newline_is_refused() -> None:
    _, too_long = serve(req(1, "info"), b"y" * 300, max_line_bytes=200)[1:]
    assert too_long["error"]["details"]["line_bytes"] == 300


class _RecordingStream(io.BytesIO):
    """Remembers the longest piece any one read returned."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        piece = super().readline(size)
        self.longest = max(self.longest, len(piece))
        return piece


def test_a_too_long_line_is_never_held_whole() -> None:
    limit = 1 << 16
    stream = _RecordingStream(b"z" * (10 << 20) + b"\n" + protocol.encode(req(1, "info")))
    lines = list(service.request_lines(stream, limit))
    assert isinstance(lines[0], service.LineTooLong) and lines[0].size == 10 << 20
    assert isinstance(lines[1], bytes) and json.loads(lines[1])["id"] == 1
    assert stream.longest <= max(limit + 1, 1 << 20)


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
    hello["protocol"] = 1  # a runtime from before tensors were framed
    with pytest.raises(ProtocolError, match="runtime speaks protocol 1, this host speaks 2"):
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
