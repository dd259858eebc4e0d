"""The runtime as a process: ``python -m edgeship_runtime serve`` on real pipes."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgeship_runtime.ops import encode_tensors
from edgeship_runtime.service import EXIT_UNHEARD

RUNTIME_ROOT = Path(__file__).resolve().parents[2] / "runtime"


def _start() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeship_runtime", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(RUNTIME_ROOT)},
    )


def _send(stdin: IO[bytes], request_id: int, op: str, **args: Any) -> None:
    stdin.write(json.dumps({"id": request_id, "op": op, "args": args}).encode() + b"\n")
    stdin.flush()


def _reply(stdout: IO[bytes]) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(stdout.readline())
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
    _send(proc.stdin, 2, "profile", handle="m1", runs=200, warmup=10)
    _send(proc.stdin, 3, "run", handle="m1", inputs=x)
    proc.stdin.close()
    with proc.stdout:
        replies = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert proc.wait(timeout=60) == 0
    assert [r.get("id") for r in replies] == [None, 1, 2, 3]  # the hello, then every answer
    assert all(r["ok"] for r in replies[1:])
