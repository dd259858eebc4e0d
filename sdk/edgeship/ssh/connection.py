"""One SSH connection to a device: lazy open, explicit timeouts, quoted commands.

Lifecycle (as in fabric): created unopened, :meth:`Connection.open` on first use,
:meth:`Connection.close` at the end. Every remote command is an argv list joined with
``shlex.join``; no user data is ever formatted into a shell string.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from ..client import Pipe
from ..config import Timeouts
from ..errors import (
    AuthenticationError,
    ConnectError,
    HostKeyError,
    RemoteCommandError,
    RemoteTimeout,
)
from .hostconfig import DEFAULT_KNOWN_HOSTS, HostSpec, resolve_host
from .hostkeys import AcceptNew, RefuseUnknown, changed_key_error

_EXIT = "edgeship-exit-status:"
_AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class AeadFirstTransport(paramiko.Transport):
    """paramiko's transport, offering AES-GCM first: one AEAD pass per packet instead of
    AES-CTR plus a separate HMAC, which about doubles its bulk throughput (model uploads)
    with the same security. The server picks from our list as usual."""

    _preferred_ciphers = _AEAD + tuple(
        c for c in paramiko.Transport._preferred_ciphers if c not in _AEAD
    )


class _ChannelLines:
    """``readline`` over a channel's stdout or stderr; ``b""`` at EOF.

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

    def close(self) -> None:
        self._buffer = b""


class _ChannelStdin:
    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def write(self, data: bytes) -> None:
        # paramiko's sendall re-slices what is left after every 32 KiB packet; a memoryview
        # makes those slices free instead of copying the rest of a 1 MiB upload chunk each time
        self._channel.sendall(memoryview(data))

    def flush(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._channel.shutdown_write()


class SSHPipe(Pipe):
    """A remote process on an exec channel, seen as streams."""

    def __init__(self, connection: Connection, channel: paramiko.Channel) -> None:
        super().__init__(
            _ChannelStdin(channel), _ChannelLines(channel.recv), _ChannelLines(channel.recv_stderr)
        )
        self.connection = connection
        self.channel = channel

    def exit_status(self, timeout: float) -> int | None:
        if not self.channel.status_event.wait(timeout):
            return None
        # the wrapper of start(report_exit=True) names the command's own status
        marks = [line for line in super().stderr_tail().splitlines() if line.startswith(_EXIT)]
        if marks:
            return int(marks[-1][len(_EXIT) :])
        return None if self.channel.exit_status == -1 else self.channel.exit_status

    def stderr_tail(self) -> str:
        lines = super().stderr_tail().splitlines(keepends=True)
        return "".join(line for line in lines if not line.startswith(_EXIT))

    def kill(self) -> None:
        """Kill the remote process group from a second channel, then drop this one.

        Closing a channel does not reliably signal the remote process, so the pid/pgid
        from the runtime's hello is used to leave no orphan on the device.
        """
        if self.process_group and not self.channel.exit_status_ready():
            # the connection itself may be what failed: then the channel close is all we have
            with contextlib.suppress(Exception):
                self.connection.run(["kill", "-KILL", "--", f"-{self.process_group}"], timeout=10)
        self.channel.close()

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError, EOFError):
            self.channel.shutdown_write()


@dataclass
class CommandResult:
    status: int
    stdout: bytes
    stderr: str


class Connection:
    """A paramiko client bound to one :class:`HostSpec`, with our host-key policy."""

    def __init__(
        self,
        host: HostSpec,
        timeouts: Timeouts,
        accept_new_host_keys: bool = False,
        ssh_config: paramiko.SSHConfig | None = None,
    ) -> None:
        self.host = host
        self.timeouts = timeouts
        self.accept_new = accept_new_host_keys or host.strict_host_key_checking == "accept-new"
        self.ssh_config = ssh_config or paramiko.SSHConfig()
        self._client: paramiko.SSHClient | None = None
        self._jump: Connection | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def label(self) -> str:
        return self.host.alias

    def open(self) -> paramiko.SSHClient:
        if self._client is not None and self._client.get_transport() is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
        client = paramiko.SSHClient()
        known = self._known_hosts()
        for path in known:
            if path.exists():
                client.load_host_keys(str(path))
        client.load_system_host_keys()
        policy = AcceptNew(known[0]) if self.accept_new else RefuseUnknown(self.label)
        client.set_missing_host_key_policy(policy)
        self._connect(client)
        self._client = client
        return client

    def _known_hosts(self) -> list[Path]:
        paths = self.host.known_hosts or (str(DEFAULT_KNOWN_HOSTS),)
        return [Path(p).expanduser() for p in paths]

    def _connect(self, client: paramiko.SSHClient) -> None:
        h, t = self.host, self.timeouts
        try:
            client.connect(
                h.hostname,
                port=h.port,
                username=h.user,
                key_filename=list(h.identity_files) or None,
                timeout=t.connect,
                banner_timeout=t.connect,
                auth_timeout=t.auth,
                channel_timeout=t.connect,
                sock=self._socket(),
                allow_agent=True,
                look_for_keys=not h.identity_files,
                transport_factory=AeadFirstTransport,
            )
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise changed_key_error(self.label, exc) from None
        except paramiko.AuthenticationException as exc:
            raise AuthenticationError(
                f"{self.label}: authentication failed for user {h.user!r} ({exc})",
                target=self.label,
            ) from None
        except TimeoutError as exc:
            raise ConnectError(
                f"{self.label}: connection to {h.hostname}:{h.port} timed out after "
                f"{t.connect:g} s ({exc or 'timeout'})",
                target=self.label,
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise ConnectError(
                f"{self.label}: cannot connect to {h.hostname}:{h.port}: {exc}", target=self.label
            ) from None

    def _socket(self) -> Any:
        proxy = self._proxy_socket()
        return self._tcp_socket() if proxy is None else proxy

    def _tcp_socket(self) -> socket.socket:
        """A TCP connection with Nagle off: SSH sends many small packets (channel opens,
        auth, SFTP requests) that otherwise wait ~40 ms for a delayed ACK each, as OpenSSH
        knows and avoids."""
        sock = socket.create_connection(
            (self.host.hostname, self.host.port), timeout=self.timeouts.connect
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _proxy_socket(self) -> Any:
        if not self.host.proxy_jump or self.host.proxy_jump.lower() == "none":
            return None
        first_hop = self.host.proxy_jump.split(",")[0]
        jump = Connection(
            resolve_host(first_hop, self.ssh_config),
            self.timeouts,
            self.accept_new,
            self.ssh_config,
        )
        transport = jump.open().get_transport()
        assert transport is not None
        self._jump = jump
        return transport.open_channel(
            "direct-tcpip",
            (self.host.hostname, self.host.port),
            ("127.0.0.1", 0),
            timeout=self.timeouts.connect,
        )

    def start(self, argv: list[str], report_exit: bool = False) -> SSHPipe:
        """Start ``argv`` on the device, ``exec``'d unless ``report_exit``.

        SSH reports a signal death as "exit-signal", which paramiko ignores; with
        ``report_exit`` a shell waits for the command and prints its status (128+signal)
        on stderr, so a segfault reads as 139 rather than "unknown".
        """
        command = shlex.join(argv)
        command = f"{command}; echo {_EXIT}$? >&2" if report_exit else f"exec {command}"
        transport = self.open().get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.timeouts.connect)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(
                f"{self.label}: cannot start a command: {exc}", target=self.label
            ) from None
        return SSHPipe(self, channel)

    def run(
        self,
        argv: list[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` to completion within ``timeout`` seconds and collect its output."""
        timeout = timeout or self.timeouts.command
        pipe = self.start(argv)
        if stdin:
            pipe.write(stdin)
        pipe.close()
        status = pipe.exit_status(timeout)
        if status is None:
            pipe.channel.close()
            raise RemoteTimeout(
                f"{self.label}: `{shlex.join(argv)}` took longer than {timeout:g} s",
                target=self.label,
            )
        result = CommandResult(status, pipe.read_rest(timeout=5.0), pipe.stderr_tail())
        pipe.channel.close()
        if check and status != 0:
            raise RemoteCommandError(self.label, shlex.join(argv), status, result.stderr)
        return result

    def sftp(self) -> paramiko.SFTPClient:
        """The connection's SFTP session, opened once."""
        if self._sftp is None:
            try:
                self._sftp = self.open().open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise ConnectError(
                    f"{self.label}: cannot open SFTP: {exc}", target=self.label
                ) from None
            self._sftp.get_channel().settimeout(self.timeouts.command)
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None
