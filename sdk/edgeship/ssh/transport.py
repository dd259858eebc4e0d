"""What a Connection runs over: a watched TCP socket and paramiko's transport, and what
their failures mean in words (before login: not an SSH server, reset, silent; later: why a
connection was lost).

paramiko logs every failure of its transport thread (a reset, a peer that is not SSH) as
ERROR lines with a traceback, which Python prints on stderr when no logging is configured:
a NullHandler on the "paramiko" logger keeps them off the terminal (an application that
configures logging still gets them); our errors say the same in one line.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import paramiko

__all__ = ["AeadFirstTransport", "WatchedSocket", "handshake_failure", "lost_reason", "open_tcp"]

logging.getLogger("paramiko").addHandler(logging.NullHandler())

_AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class AeadFirstTransport(paramiko.Transport):
    """paramiko's transport, offering AES-GCM first: one AEAD pass per packet instead of
    AES-CTR plus a separate HMAC, which about doubles its bulk throughput (model uploads)
    with the same security. The server picks from our list as usual.

    It also keeps the first line a peer sent instead of an SSH greeting (paramiko only
    logs it), so that "not an SSH server" can quote it.
    """

    _preferred_ciphers = _AEAD + tuple(
        c for c in paramiko.Transport._preferred_ciphers if c not in _AEAD
    )
    peer_greeting: str | None = None

    def prefer_host_keys(self, algorithms: list[str]) -> None:
        """Ask for these host key ``algorithms`` first, then the others, in our order."""
        options = self.get_security_options()
        first = [name for name in algorithms if name in options.key_types]
        options.key_types = first + [n for n in options.key_types if n not in first]

    def _log(self, level: int, msg: Any, *args: Any) -> None:
        if self.peer_greeting is None and isinstance(msg, str) and msg.startswith("Banner: "):
            self.peer_greeting = msg.removeprefix("Banner: ")
        super()._log(level, msg, *args)


class WatchedSocket(socket.socket):
    """A TCP socket that remembers the first error the kernel reported on it: paramiko
    turns a connection the kernel gave up on (``ETIMEDOUT``) into a plain EOF, which
    would read as if the device had closed it."""

    kernel_error: OSError | None = None

    @classmethod
    def adopt(cls, sock: socket.socket) -> WatchedSocket:
        timeout = sock.gettimeout()
        watched = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        watched.settimeout(timeout)
        return watched

    def recv(self, size: int, flags: int = 0) -> bytes:
        try:
            return super().recv(size, flags)
        except OSError as exc:
            self._note(exc)
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except OSError as exc:
            self._note(exc)
            raise

    def _note(self, exc: OSError) -> None:
        # a timeout of our own settimeout() has no errno; EAGAIN/EINTR are retried
        if self.kernel_error is None and exc.errno not in (None, errno.EAGAIN, errno.EINTR):
            self.kernel_error = exc


def open_tcp(host: str, port: int, timeout: float, unresponsive: float) -> WatchedSocket:
    """A TCP connection with Nagle off: SSH sends many small packets (channel opens,
    auth, SFTP requests) that otherwise wait ~40 ms for a delayed ACK each, as OpenSSH
    knows and avoids. And one the kernel gives up on once the device has acknowledged
    nothing for ``unresponsive`` s, probing it while we only wait: a board that lost power
    ends the wait then, not when the command's timeout runs out."""
    sock = WatchedSocket.adopt(socket.create_connection((host, port), timeout=timeout))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _give_up_when_silent(sock, unresponsive)
    return sock


def handshake_failure(
    where: str,
    timeout: float,
    transport: paramiko.Transport | None,
    exc: BaseException,
    kernel_error: OSError | None = None,
) -> str:
    """What went wrong before authentication with ``where`` (host:port), in words: the
    peer is not an SSH server, reset the connection, or sent no greeting within
    ``timeout`` s. ``kernel_error``: what the TCP socket saw (:class:`WatchedSocket`)."""
    greeted = bool(transport is not None and transport.remote_version)
    sent = transport.peer_greeting if isinstance(transport, AeadFirstTransport) else None
    reset = isinstance(kernel_error, ConnectionResetError)
    cause = kernel_error if reset else _root_cause(exc)
    if sent is not None and not greeted:
        return f"{where} is not an SSH server: it answered {sent[:80]!r} instead of an SSH greeting"
    if isinstance(cause, ConnectionResetError):
        stage = "during the SSH handshake" if greeted else "before any SSH greeting"
        return f"connection to {where} reset {stage} (is it an SSH server that accepts us?)"
    if isinstance(cause, TimeoutError) or str(exc) == "No existing session":
        what = "finish the SSH handshake" if greeted else "send an SSH greeting"
        return (
            f"{where} accepted the connection but did not {what} within {timeout:g} s "
            "(not an SSH server, or an overloaded one)"
        )
    if isinstance(cause, EOFError) and not greeted:
        return (
            f"{where} closed the connection without an SSH greeting: not an SSH server, "
            "or an sshd refusing connections (MaxStartups, TCP wrappers)"
        )
    return f"cannot connect to {where}: {exc or type(exc).__name__}"


def lost_reason(
    transport: paramiko.Transport | None, kernel_error: OSError | None, unresponsive: float
) -> str:
    """Why an established connection died, in words: reset, closed by the device, or no
    answer for ``unresponsive`` s (the kernel gave up on it)."""
    saved = transport.saved_exception if transport is not None else None
    for exc in (kernel_error, saved):
        if isinstance(exc, ConnectionResetError):
            return "the connection was reset"
        if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
            return f"no answer for {unresponsive:g} s"
    if saved is None or isinstance(saved, EOFError):
        return "the device closed the connection"
    return str(saved) or type(saved).__name__


def _root_cause(exc: BaseException) -> BaseException:
    """The first exception of the chain ``exc`` ends (paramiko wraps a reset or an EOF
    in "Error reading SSH protocol banner")."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def _give_up_when_silent(sock: socket.socket, seconds: float) -> None:
    """Keepalive probes from a third of ``seconds`` of silence on, and an abort once sent
    data or probes stay unacknowledged for ``seconds`` (Linux; elsewhere what exists)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = {
        "TCP_KEEPIDLE": max(1, int(seconds / 3)),
        "TCP_KEEPALIVE": max(1, int(seconds / 3)),  # macOS's name for TCP_KEEPIDLE
        "TCP_KEEPINTVL": max(1, int(seconds / 6)),
        "TCP_KEEPCNT": 3,
        "TCP_USER_TIMEOUT": int(seconds * 1000),
    }
    for name, value in options.items():
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
