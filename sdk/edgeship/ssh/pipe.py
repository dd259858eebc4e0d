"""A remote process on an SSH exec channel, seen as the streams of a :class:`~..client.Pipe`.

Every command first prints its process group on stderr behind a marker, and one started
with ``report_exit`` prints its own exit status there too (see :func:`command_line`);
:class:`SSHPipe` reads both from there and hides the markers from the stderr it reports.
The group is what :meth:`SSHPipe.frozen` looks at and :meth:`SSHPipe.kill` ends, so every
wait on a command (:meth:`SSHPipe.watched`) ends one that is stopped on the device after
``--unresponsive`` s instead of waiting it out.
"""

from __future__ import annotations

import contextlib
import math
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import paramiko

from edgeship.core.client import Pipe
from edgeship.core.errors import TargetError
from edgeship.ssh.procs import end_group, stopped

if TYPE_CHECKING:
    from edgeship.ssh.connection import Connection

__all__ = ["SSHPipe", "command_line"]

_T = TypeVar("_T")

_EXIT = "edgeship-exit-status:"
_GROUP = "edgeship-group:"


def command_line(argv: list[str], report_exit: bool, private: bool = False) -> str:
    """The shell line for an exec channel: ``argv`` quoted and ``exec``'d, or, with
    ``report_exit``, run by a shell that then prints its status (128+signal for a signal
    death) on stderr behind the marker that :meth:`SSHPipe.exit_status` reads. Either
    way the shell first prints its pid there, the command's process group (sshd makes
    the shell a session leader). With ``private``, what the command creates is the
    device user's alone (umask 077)."""
    command = shlex.join(argv)
    line = f"{command}; echo {_EXIT}$? >&2" if report_exit else f"exec {command}"
    line = f"echo {_GROUP}$$ >&2; {line}"
    return f"umask 077 && {line}" if private else line


class _ChannelLines:
    """``readline`` (and ``readinto``, for the frames after a line) over a channel's
    stdout or stderr; ``b""`` at EOF.

    Used instead of paramiko's file objects, whose ``__del__`` may flush into a closed
    buffer at interpreter exit and print spurious tracebacks.
    """

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self._recv(65536)
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def readinto(self, buffer: memoryview) -> int:
        """Up to ``len(buffer)`` bytes into ``buffer``, what is buffered first; 0 at EOF."""
        if not self._buffer:
            self._buffer = self._recv(max(65536, min(len(buffer), 1 << 20)))
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        self._buffer = b""


class _ChannelStdin:
    """The channel's stdin; ``writable`` waits until the device takes more (or raises)."""

    def __init__(self, channel: paramiko.Channel, writable: Callable[[], None]) -> None:
        self._channel = channel
        self._writable = writable

    def write(self, data: bytes | memoryview) -> None:
        # as paramiko's sendall, but waiting for the window here, where a stopped command
        # is noticed; a memoryview makes the slices of what is left free
        rest = memoryview(data)
        while rest:
            self._writable()
            rest = rest[self._channel.send(rest) :]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._channel.shutdown_write()


class SSHPipe(Pipe):
    """A remote process on an exec channel, seen as streams."""

    def __init__(self, connection: Connection, channel: paramiko.Channel, name: str) -> None:
        self.connection = connection
        self.channel = channel
        self.name = name
        """The command's first word, as errors name it."""
        super().__init__(
            _ChannelStdin(channel, self._writable),
            _ChannelLines(channel.recv),
            _ChannelLines(channel.recv_stderr),
        )

    def _take_stderr(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if not text.startswith(_GROUP):
            super()._take_stderr(line)
        elif self.process_group is None and text[len(_GROUP) :].strip().isdigit():
            self.process_group = int(text[len(_GROUP) :])

    def watched(self, wait: Callable[[float], _T | None], timeout: float) -> _T | None:
        """``wait`` for up to ``timeout`` s, ending the command if it is stopped for
        ``--unresponsive`` s (:meth:`~edgeship.core.client.Pipe.watch`)."""
        c = self.connection
        return self.watch(wait, timeout, c.timeouts.unresponsive, c.label, f"`{self.name}`")

    def finished(self, timeout: float) -> int | None:
        """:meth:`exit_status` within ``timeout`` s, ending a stopped command (:meth:`watched`)."""
        ended = self.watched(lambda wait: self.channel.status_event.wait(wait) or None, timeout)
        return self.exit_status(0) if ended else None

    def _writable(self) -> None:
        """Wait until the device takes more input (the channel's window opens), for as
        long as the channel's timeout (forever without one), ending a stopped command."""
        limit = self.channel.gettimeout()
        if self.watched(self._window, math.inf if limit is None else limit) is None:
            raise TimeoutError(f"the device took no input for {limit:g} s")

    def _window(self, timeout: float) -> bool | None:
        channel = self.channel
        with channel.out_buffer_cv:
            opened = channel.out_buffer_cv.wait_for(
                lambda: channel.out_window_size > 0 or channel.closed, timeout
            )
        return opened or None

    def exit_status(self, timeout: float) -> int | None:
        if not self.channel.status_event.wait(timeout):
            return None
        # the wrapper of start(report_exit=True) names the command's own status
        marks = [line for line in super().stderr_tail().splitlines() if line.startswith(_EXIT)]
        if marks:
            return int(marks[-1][len(_EXIT) :])
        return None if self.channel.exit_status == -1 else self.channel.exit_status

    def lost(self, during: str) -> TargetError | None:
        # a process that ended reported its status; without one, the connection may be
        # what ended, and the transport says so a moment after the channel closed
        wait = 0.0 if self.channel.exit_status_ready() else 0.5
        return self.connection.lost_error(during) if self.connection.lost(wait) else None

    def stderr_tail(self) -> str:
        lines = super().stderr_tail().splitlines(keepends=True)
        return "".join(line for line in lines if not line.startswith(_EXIT))

    def kill(self) -> None:
        """End the remote process group from a second channel, then drop this one.

        Closing a channel does not reliably signal the remote process, so its process
        group (see :func:`command_line`; a runtime's from its hello) is ended to leave no
        orphan on the device; a stopped one is continued first, so that it gets the
        SIGTERM (see :mod:`.procs`).
        """
        if self.process_group and not self.channel.exit_status_ready():
            # the connection itself may be what failed: then the channel close is all we have
            with contextlib.suppress(Exception):
                end_group(self.connection, self.process_group, timeout=10)
        self.channel.close()

    def frozen(self) -> bool:
        if not self.process_group or self.channel.exit_status_ready():
            return False
        timeout = self.connection.timeouts.unresponsive
        try:
            return bool(stopped(self.connection, self.process_group, timeout))
        except TargetError:  # no answer to that either: the connection's watch decides
            return False

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError, EOFError):
            self.channel.shutdown_write()
