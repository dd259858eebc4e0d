"""The runtime as a process: ``python -m edgeship_runtime serve`` on real pipes."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from edgeship_runtime.ops import encode_tensors
from edgeship_runtime.service import EXIT_UNHEARD

from .framed import message_bytes, read_message, read_messages

RUNTIME_ROOT = Path(__file__).resolve().parents[2] / "runtime"


def _start(*options: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeship_runtime", "serve", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(RUNTIME_ROOT), **env},
    )


def _send(stdin: IO[bytes], request_id: int, op: str, **args: Any) -> None:
    stdin.write(message_bytes({"id": request_id, "op": op, "args": args}))
    stdin.flush()


def _reply(stdout: IO[bytes]) -> dict[str, Any]:
    reply = read_message(stdout)
    assert reply is not None
    return reply


def test_a_runtime_nobody_reads_any_more_exits_mid_request(add_onnx: Path) -> None:
    """The host died (or its connection closed) during a long profile: the runtime does
    not compute on for nobody, it exits at once."""
    proc = _start()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert _reply(proc.stdout)["edgeship"] == "runtime"
        _send(proc.stdin, 1, "load", path=str(add_onnx))
        handle = _reply(proc.stdout)["result"]["handle"]
        _send(proc.stdin, 2, "profile", handle=handle, min_seconds=60, warmup=0, runs=1)
        time.sleep(1.0)
        pending, _, _ = select.select([proc.stdout], [], [], 0)
        assert not pending  # no answer yet: the profile is running
        started = time.monotonic()
        proc.stdout.close()
        proc.stdin.close()
        assert proc.wait(timeout=10) == EXIT_UNHEARD
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
        proc.wait()


def test_answers_still_come_when_stdin_closes_after_the_last_request(add_onnx: Path) -> None:
    proc = _start()
    assert proc.stdin is not None and proc.stdout is not None
    x = encode_tensors({"x": np.ones((2, 4), np.float32)})
    _send(proc.stdin, 1, "load", path=str(add_onnx))
    _send(proc.stdin, 2, "profile", handle="m1", runs=200, warmup=10, min_seconds=0)
    _send(proc.stdin, 3, "run", handle="m1", inputs=x)
    proc.stdin.close()
    with proc.stdout:
        replies = read_messages(proc.stdout)
    assert proc.wait(timeout=60) == 0
    assert [r.get("id") for r in replies] == [None, 1, 2, 3]  # the hello, then every answer
    assert all(r["ok"] for r in replies[1:])


@contextlib.contextmanager
def _serving(
    *options: str, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes], IO[bytes]]]:
    """A started runtime and its stdin/stdout, killed and closed at the end."""
    with _start(*options, **env) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            yield proc, proc.stdin, proc.stdout
        finally:
            proc.kill()


def _peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (Linux: VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_nan_id_does_not_end_the_service() -> None:
    with _serving() as (_, stdin, stdout):
        _reply(stdout)
        stdin.write(b'{"id": NaN, "op": "x"}\n')
        _send(stdin, 2, "info")
        bad, good = _reply(stdout), _reply(stdout)
        assert bad["id"] is None and bad["error"]["type"] == "ProtocolError"
        assert good["id"] == 2 and good["ok"]


@pytest.mark.parametrize("how", ["option", "env", "option-over-env"])
def test_the_line_limit_is_set_by_option_or_environment(how: str) -> None:
    options = ("--max-line-bytes", "4096") if how != "env" else ()
    env = {"EDGESHIP_MAX_LINE_BYTES": "8192" if how == "option-over-env" else "4096"}
    with _serving(*options, **(env if how != "option" else {})) as (_, stdin, stdout):
        assert _reply(stdout)["max_line_bytes"] == 4096
        _send(stdin, 1, "info", pad="x" * 5000)
        _send(stdin, 2, "info")
        refused, served = _reply(stdout), _reply(stdout)
        assert refused["id"] == 1 and "over the limit of 4096 bytes" in refused["error"]["message"]
        assert served["id"] == 2 and served["ok"]


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_line_limit_is_one_line_at_start(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgeship_runtime", "serve"],
        input=b"",
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(RUNTIME_ROOT), "EDGESHIP_MAX_LINE_BYTES": value},
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == b""
    assert b"EDGESHIP_MAX_LINE_BYTES: expected a positive number of bytes" in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_line_far_over_the_limit_is_dropped_without_holding_it() -> None:
    """300 MB in one line must not become 300 MB of runtime memory."""
    with _serving("--max-line-bytes", str(1 << 20)) as (proc, stdin, stdout):
        _reply(stdout)
        _send(stdin, 1, "info")
        _reply(stdout)
        before = _peak_rss_mb(proc.pid)
        stdin.write(b'{"id":2,"op":"run","args":{"inputs":"')
        block = b"A" * (4 << 20)
        for _ in range(75):  # 300 MiB
            stdin.write(block)
        stdin.write(b'"}}\n')
        _send(stdin, 3, "info")
        refused, served = _reply(stdout), _reply(stdout)
        assert refused["id"] == 2 and refused["error"]["details"]["line_bytes"] > 300 << 20
        assert served["id"] == 3 and served["ok"]
        assert _peak_rss_mb(proc.pid) - before < 32
