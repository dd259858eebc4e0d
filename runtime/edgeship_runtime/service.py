"""Serve the stdio protocol (see :mod:`edgeship_runtime.protocol`) on stdin/stdout."""

from __future__ import annotations

import os
import select
import sys
import threading
import traceback
from typing import Any, BinaryIO, Dict, Iterator, Union

from . import frames, protocol
from .errors import EdgeshipError, ProtocolError
from .ops import Runtime

_OPS = ("info", "load", "profile", "profile_ops", "run", "interleave", "conditions", "unload")
_DISCARD_CHUNK = 1 << 20  # bytes read at a time while skipping the rest of a too-long line


class LineTooLong:
    """A request line over the limit: its first bytes and its whole length (bytes,
    without the newline); the rest was read and dropped."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.size = size


def serve(
    stdin: BinaryIO, stdout: BinaryIO, max_line_bytes: int = protocol.DEFAULT_MAX_LINE_BYTES
) -> int:
    """Answer requests until stdin closes or ``shutdown``; returns the exit status.

    Every line gets a reply, a malformed or oversized one an error; none ends the service.
    """
    runtime = Runtime()
    _send(stdout, protocol.hello(max_line_bytes))
    try:
        for line in request_lines(stdin, max_line_bytes):
            if isinstance(line, LineTooLong):
                reply = too_long_reply(line, max_line_bytes)
            elif not line.strip():
                continue
            else:
                reply = handle_line(runtime, line, stdin)
            _send(stdout, reply)
            if reply.get("result", {}).get("shutdown"):
                break
    finally:
        runtime.close()
    return 0


def request_lines(stdin: BinaryIO, limit: int) -> Iterator[Union[bytes, LineTooLong]]:
    """The lines of ``stdin``; one longer than ``limit`` bytes (newline not counted) as a
    :class:`LineTooLong`, of which no more than ``limit`` bytes are ever held."""
    while True:
        line = stdin.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        head = line[:200]
        del line
        while True:  # drop the rest up to the newline, a bounded chunk at a time
            chunk = stdin.readline(_DISCARD_CHUNK)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield LineTooLong(head, size - (1 if chunk.endswith(b"\n") else 0))


def too_long_reply(line: LineTooLong, limit: int) -> Dict[str, Any]:
    error = ProtocolError(
        f"request line of {line.size} bytes is over the limit of {_bytes(limit)} and was "
        "discarded: pass large inputs as a file on the device, or raise the limit "
        f"(serve --max-line-bytes, {protocol.MAX_LINE_BYTES_ENV})",
        limit_bytes=limit,
        line_bytes=line.size,
    )
    return protocol.reply_error(protocol.leading_id(line.head), error.to_wire())


def _bytes(count: int) -> str:
    """``1000 bytes``, ``268435456 bytes (256 MiB)``."""
    return f"{count} bytes" + (f" ({count / (1 << 20):.4g} MiB)" if count >= 1 << 20 else "")


def handle_line(runtime: Runtime, line: bytes, stdin: BinaryIO) -> Dict[str, Any]:
    """The reply to one request line; its frames, if it has any, are read from ``stdin``
    first, even when the request is refused, so that the next line is a line."""
    request_id: protocol.RequestId = None
    try:
        size = frames.binary_size(line)
        try:
            message = protocol.decode(line)
            request_id = protocol.message_id(message)
        except ProtocolError:
            frames.skip(stdin, size or 0)
            raise
        if size is not None:
            message = frames.unpack(message, frames.read_blob(stdin, size))
        op = message.get("op")
        if op == "shutdown":
            return protocol.reply_ok(request_id, {"shutdown": True})
        if op not in _OPS:
            raise ProtocolError(
                f"unknown op {str(op)[:100]!r} (known: {', '.join(_OPS)}, shutdown)"
            )
        args = message.get("args") or {}
        if not isinstance(args, dict):
            raise ProtocolError(f"{op}: args must be a JSON object, got {type(args).__name__}")
        result = getattr(runtime, str(op))(args)
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
        parts = frames.pack(message)
    except (ValueError, TypeError) as exc:  # NaN or another value JSON cannot carry
        request_id = message.get("id")
        if not isinstance(request_id, (int, str)) or isinstance(request_id, bool):
            request_id = None
        parts = frames.pack(
            protocol.reply_error(
                request_id,
                {"type": "ProtocolError", "message": f"reply not encodable: {exc}", "details": {}},
            )
        )
    frames.write(stdout, parts)


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
