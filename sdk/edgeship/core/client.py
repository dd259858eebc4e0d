"""The host's end of the runtime's stdio protocol, over any pair of byte streams.

A :class:`Pipe` is a started runtime process seen as streams (a local subprocess or an
SSH channel); :class:`RuntimeClient` speaks :mod:`edgeship_runtime.protocol` over it with
a timeout on every reply, tensors framed after its lines
(:mod:`edgeship_runtime.frames`). On timeout the process is killed; on EOF the exit status and
the tail of stderr become a :class:`~edgeship.core.errors.RuntimeCrashed`.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from edgeship.core.errors import (
    EdgeshipError,
    ProtocolError,
    RemoteTimeout,
    RuntimeCrashed,
    TargetError,
    UsageError,
    error_from_wire,
)
from edgeship_runtime import protocol

# Frames carry arrays (numpy): they are imported where a runtime's output is read, so that
# a Pipe running a plain command (a deploy's lock, its checks) loads no numpy.
if TYPE_CHECKING:
    from edgeship_runtime import frames

__all__ = ["ByteSink", "LineSource", "Pipe", "RuntimeClient"]

_STDERR_LINES = 200
_T = TypeVar("_T")


class LineSource(Protocol):
    def readline(self) -> bytes: ...

    def close(self) -> None: ...


class ByteSink(Protocol):
    def write(self, data: frames.Buffer) -> Any: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Pipe(abc.ABC):
    """Streams of a started runtime, drained by reader threads so reads can time out.

    Subclasses give the process's lifecycle: :meth:`exit_status`, :meth:`kill`.
    """

    process_group: int | None = None
    """The remote process group (a runtime's from its hello); lets :meth:`kill` reach
    workers and :meth:`frozen` look at it."""
    framed = False
    """Whether stdout carries the runtime's protocol, whose lines may be followed by
    frames (set by :class:`RuntimeClient`); plain command output never is."""

    def __init__(self, stdin: ByteSink, stdout: LineSource, stderr: LineSource) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._lines: queue.Queue[bytes | bytearray | EdgeshipError] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._readers = [
            _drain(stdout, self._take_line, "stdout"),
            _drain(stderr, self._take_stderr, "stderr"),
        ]

    def _take_stderr(self, line: bytes) -> None:
        self._stderr.append(line.decode("utf-8", "replace"))

    def _take_line(self, line: bytes) -> None:
        """Queue a stdout line, and the frames that follow it (read here, in the reader
        thread); frames over this host's available memory are dropped for an error."""
        self._lines.put(line)
        if not self.framed:
            return
        from edgeship_runtime import frames

        size = frames.binary_size(line)
        if size is not None:
            stream: Any = self._stdout  # a file or the channel's reader: both have readinto
            try:
                self._lines.put(frames.read_blob(stream, size, side="host"))
            except EdgeshipError as exc:
                self._lines.put(exc)

    def write(self, data: bytes) -> None:
        self._stdin.write(data)
        self._stdin.flush()

    def write_parts(self, parts: list[frames.Buffer]) -> None:
        """A message's line and frames (:func:`~edgeship_runtime.frames.pack`), in one flush."""
        for part in parts:
            self._stdin.write(part)
        self._stdin.flush()

    def readline(self, timeout: float | None) -> bytes:
        """The next stdout line, ``b""`` at EOF; ``queue.Empty`` after ``timeout`` seconds."""
        item = self._lines.get(timeout=timeout)
        if not isinstance(item, bytes):
            raise ProtocolError("frames arrived where a line was expected")
        return item

    def next_line(self, timeout: float) -> bytes | None:
        """The next stdout line (``b""`` at EOF), or None after ``timeout`` seconds."""
        try:
            return self.readline(timeout)
        except queue.Empty:
            return None

    def read_frames(self, timeout: float | None) -> bytearray | None:
        """The frames after the last line read; None at EOF; the error when they were
        refused; ``queue.Empty`` after ``timeout`` seconds."""
        item = self._lines.get(timeout=timeout)
        if isinstance(item, EdgeshipError):
            raise item
        return item if isinstance(item, bytearray) else None

    def read_rest(self, timeout: float) -> bytes:
        """All stdout up to EOF, or what arrived within ``timeout`` seconds."""
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.readline(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break
            chunks.append(line)
        return b"".join(chunks)

    def stderr_tail(self) -> str:
        for reader in self._readers[1:]:
            reader.join(timeout=0.5)  # let the last lines of a dead process arrive
        return "".join(self._stderr)

    @abc.abstractmethod
    def exit_status(self, timeout: float) -> int | None:
        """The process's exit status once it ended within ``timeout`` s, else None."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Kill the runtime and everything it started."""

    def lost(self, during: str) -> TargetError | None:
        """The error to report when the way to the runtime, not the runtime, broke."""
        return None

    def frozen(self) -> bool:
        """Whether the runtime is stopped (SIGSTOP: it can answer nothing until continued)."""
        return False

    def watch(
        self,
        wait: Callable[[float], _T | None],
        timeout: float,
        unresponsive: float | None,
        label: str,
        what: str,
    ) -> _T | None:
        """``wait(seconds)`` until it gives something, for up to ``timeout`` s (then
        None), looking every ``unresponsive`` s it gave nothing whether the process is
        frozen (:meth:`frozen`): one that is is killed, and :class:`RemoteTimeout` says
        that ``what`` ("the runtime", a command) answered nothing."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            got = wait(max(0.0, min(left, unresponsive or left)))
            if got is not None or left <= (unresponsive or left):
                return got
            if self.frozen():
                self.kill()
                raise RemoteTimeout(
                    f"{label}: {what} is stopped (frozen) and answered nothing for "
                    f"{unresponsive:g} s (--unresponsive); it was ended",
                    target=label,
                )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()


def _drain(stream: LineSource, sink: Callable[[bytes], None], name: str) -> threading.Thread:
    def loop() -> None:
        try:
            for line in iter(stream.readline, b""):
                sink(line)
        except (OSError, ValueError):
            pass
        finally:
            if name == "stdout":
                sink(b"")

    thread = threading.Thread(target=loop, name=f"edgeship-{name}", daemon=True)
    thread.start()
    return thread


class RuntimeClient:
    """Request/reply over a :class:`Pipe`, after checking the runtime's hello."""

    def __init__(
        self, pipe: Pipe, label: str, timeout: float, unresponsive: float | None = None
    ) -> None:
        self.pipe = pipe
        pipe.framed = True
        self.label = label
        self.timeout = timeout
        self.unresponsive = unresponsive
        """Seconds after which a reply still missing makes us look whether the runtime is
        frozen (:meth:`Pipe.frozen`); a frozen one is ended then, not waited for."""
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] = {}

    def start(self, timeout: float | None = None) -> RuntimeClient:
        """Read and check the runtime's hello, waiting at most ``timeout`` seconds."""
        self.hello = self._read("start-up", timeout or self.timeout)
        protocol.check_hello(self.hello)
        self.pipe.process_group = self.hello.get("pgid")
        return self

    def call(self, op: str, args: dict[str, Any], timeout: float | None = None) -> Any:
        from edgeship_runtime import frames

        request_id = next(self._ids)
        parts = frames.pack(protocol.request(request_id, op, args))
        limit = self.hello.get("max_line_bytes")
        if isinstance(limit, int) and len(parts[0]) > limit:
            raise UsageError(
                f"{self.label}: the {op} request is {len(parts[0]):,} bytes, over the "
                f"runtime's limit of {limit:,} (serve --max-line-bytes)"
            )
        try:
            self.pipe.write_parts(parts)
        except OSError:
            raise self._ended(op) from None
        reply = self._read(op, timeout or self.timeout)
        if reply.get("id") != request_id:
            raise ProtocolError(
                f"{self.label}: reply to request {reply.get('id')}, expected {request_id}"
            )
        if not reply.get("ok"):
            raise error_from_wire(reply.get("error") or {}, context=self.label)
        return reply.get("result")

    def close(self) -> None:
        """Ask the runtime to exit; kill it if it does not within a few seconds."""
        try:
            self.pipe.write(protocol.encode(protocol.request(0, "shutdown", {})))
            self.pipe.close()
            if self.pipe.exit_status(timeout=5.0) is None:
                self.pipe.kill()
        except OSError:
            self.pipe.kill()

    def _read(self, during: str, timeout: float) -> dict[str, Any]:
        """The next message, its frames unpacked (:func:`~edgeship_runtime.frames.unpack`)."""
        from edgeship_runtime import frames

        try:
            line = self._readline(during, timeout)
            if not line:
                raise self._ended(during)
            message = protocol.decode(line)
            if frames.binary_size(line) is None:
                return message
            blob = self.pipe.read_frames(timeout)
            if blob is None:
                raise self._ended(during)
            unpacked: dict[str, Any] = frames.unpack(message, blob)
            return unpacked
        except queue.Empty:
            self.pipe.kill()
            raise RemoteTimeout(
                f"{self.label}: {during} took longer than {timeout:g} s; the runtime was killed",
                target=self.label,
            ) from None
        except ProtocolError as exc:
            raise ProtocolError(f"{self.label}: {exc}") from None

    def _readline(self, during: str, timeout: float) -> bytes:
        """The next line within ``timeout`` s; a frozen runtime is ended (:meth:`Pipe.watch`)."""
        what = f"the runtime (during {during})"
        line = self.pipe.watch(self.pipe.next_line, timeout, self.unresponsive, self.label, what)
        if line is None:
            raise queue.Empty
        return line

    def _ended(self, during: str) -> TargetError:
        """Why the runtime's output ended: the connection to it was lost, or it died."""
        lost = self.pipe.lost(during)
        if lost is not None:
            return lost
        status = self.pipe.exit_status(timeout=5.0)
        return RuntimeCrashed(self.label, status, self.pipe.stderr_tail(), during)
