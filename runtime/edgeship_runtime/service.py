"""Serve the stdio protocol (see :mod:`edgeship_runtime.protocol`) on stdin/stdout."""

from __future__ import annotations

import os
import select
import sys
import threading
import traceback
from typing import Any, BinaryIO, Dict

from . import protocol
from .errors import EdgeshipError, ProtocolError
from .ops import Runtime

_OPS = ("info", "load", "profile", "run", "interleave", "unload")


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer requests until stdin closes or ``shutdown``; returns the exit status."""
    runtime = Runtime()
    _send(stdout, protocol.hello())
    try:
        for line in stdin:
            if not line.strip():
                continue
            reply = handle_line(runtime, line)
            _send(stdout, reply)
            if reply.get("result", {}).get("shutdown"):
                break
    finally:
        runtime.close()
    return 0


def handle_line(runtime: Runtime, line: bytes) -> Dict[str, Any]:
    request_id = None
    try:
        message = protocol.decode(line)
        request_id = message.get("id")
        op = message.get("op")
        if op == "shutdown":
            return protocol.reply_ok(request_id, {"shutdown": True})
        if op not in _OPS:
            raise ProtocolError(f"unknown op {op!r} (known: {', '.join(_OPS)}, shutdown)")
        result = getattr(runtime, str(op))(message.get("args") or {})
        return protocol.reply_ok(request_id, result)
    except EdgeshipError as exc:
        return protocol.reply_error(request_id, exc.to_wire())
    except Exception as exc:  # a bug or an engine failure: keep serving, say what happened
        traceback.print_exc(file=sys.stderr)
        return protocol.reply_error(
            request_id,
            {"type": "EdgeshipError", "message": f"{type(exc).__name__}: {exc}", "details": {}},
        )


def _send(stdout: BinaryIO, message: Dict[str, Any]) -> None:
    try:
        data = protocol.encode(message)
    except ValueError as exc:  # NaN or another value JSON cannot carry
        data = protocol.encode(
            protocol.reply_error(
                message.get("id"),
                {"type": "ProtocolError", "message": f"reply not encodable: {exc}", "details": {}},
            )
        )
    stdout.write(data)
    stdout.flush()


def protected_stdout() -> BinaryIO:
    """A private handle on fd 1 for protocol lines; fd 1 itself then points at stderr.

    Native engines (TFLite's "Created delegate", ONNX Runtime's logger) may print to fd 1;
    after this they land on stderr and cannot corrupt the protocol stream.
    """
    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(private, "wb", buffering=0)


EXIT_UNHEARD = 141  # as a process killed by SIGPIPE: nobody reads what we write


def exit_when_unheard(stdout: BinaryIO) -> bool:
    """Exit at once when nobody reads ``stdout`` any more; False where it cannot watch.

    The host crashed, was killed, or its SSH connection closed: sshd then closes our pipes,
    but a long request (a profile of minutes, a big ``run``) would compute on for nobody,
    an orphan on the device. A thread polls the pipe for the reader's hang-up (POLLERR or
    POLLHUP, with no other event asked for) and ends the process; shard and pipeline
    workers die with it (they asked the kernel for that), shared memory is already
    unlinked. Not stdin: a host may close it after its last request and still read the
    answers.
    """
    if not hasattr(select, "poll"):
        return False
    try:
        fd = stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, 0)

    def watch() -> None:
        while True:
            for _, event in poller.poll():
                if event & select.POLLNVAL:  # closed by ourselves on the way out
                    return
                if event & (select.POLLERR | select.POLLHUP):
                    os._exit(EXIT_UNHEARD)

    threading.Thread(target=watch, name="exit-when-unheard", daemon=True).start()
    return True
