"""One SSH connection to a device: lazy open, explicit timeouts, quoted commands.

Lifecycle (as in fabric): created unopened, :meth:`Connection.open` on first use,
:meth:`Connection.close` at the end. Every remote command is an argv list joined with
``shlex.join`` (:func:`.pipe.command_line`); no user data is ever formatted into a shell
string.
"""

from __future__ import annotations

import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from edgeship.core.config import Timeouts
from edgeship.core.errors import (
    AuthenticationError,
    ConnectError,
    HostKeyError,
    RemoteCommandError,
    RemoteTimeout,
)
from edgeship.ssh.agent import agent_has_keys
from edgeship.ssh.hostconfig import DEFAULT_KNOWN_HOSTS, HostSpec, SSHConfig, jump_chain
from edgeship.ssh.hostkeys import (
    AcceptNew,
    KnownHosts,
    RefuseUnknown,
    known_hosts_name,
    read_known_hosts,
)
from edgeship.ssh.pipe import SSHPipe, command_line
from edgeship.ssh.transport import (
    AeadFirstTransport,
    WatchedSocket,
    handshake_failure,
    lost_reason,
    open_tcp,
)

__all__ = ["CommandResult", "Connection"]

_OPT_IN = ("accept-new", "no", "off")  # StrictHostKeyChecking values that add unknown keys


@dataclass
class CommandResult:
    status: int
    stdout: bytes
    stderr: str


class Connection:
    """A paramiko client bound to one :class:`HostSpec`, with our host-key policy.

    A host with a ProxyJump is reached through a Connection to its last hop (see
    :func:`~.hostconfig.jump_host`), which reaches its own hops the same way, so a chain
    of any length is that many nested Connections, each with these timeouts, its own
    ssh_config entry and the same host-key policy; :meth:`close` closes them all.
    ``accept_new_host_keys`` (the user's opt-in) holds for every hop, a host's own
    ``StrictHostKeyChecking accept-new`` only for that host.
    """

    def __init__(
        self,
        host: HostSpec,
        timeouts: Timeouts,
        accept_new_host_keys: bool = False,
        ssh_config: paramiko.SSHConfig | None = None,
    ) -> None:
        self.host = host
        self.timeouts = timeouts
        self.accept_new_host_keys = accept_new_host_keys
        # "no"/"off" in the user's ssh_config is an opt-in too, honoured as "accept-new": a
        # changed key is refused whatever the config says; "ask" cannot ask here, so refuses
        self.accept_new = accept_new_host_keys or host.strict_host_key_checking in _OPT_IN
        self.ssh_config = ssh_config or SSHConfig()
        self._client: paramiko.SSHClient | None = None
        self._jump: Connection | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._tcp: WatchedSocket | None = None
        self._known = KnownHosts("")
        self._starts_lock = threading.Lock()
        self.process_starts = 0
        """Processes started on the device so far: exec channels and SFTP sessions (each
        an sftp-server, unless the sshd serves SFTP in-process)."""

    @property
    def label(self) -> str:
        return self.host.alias

    def open(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            self.close()  # a dead connection: drop it, its SFTP and its hops, then reconnect
        client = paramiko.SSHClient()
        files = self._known_hosts()
        # ~/.ssh/known_hosts too, as paramiko's load_system_host_keys() did before
        read = [*files, *[p for p in [DEFAULT_KNOWN_HOSTS.expanduser()] if p not in files]]
        self._known = read_known_hosts(read, known_hosts_name(self.host.hostname, self.host.port))
        policy = (
            AcceptNew(files[0], self._known, self.label)
            if self.accept_new
            else RefuseUnknown(self.label, self._known)
        )
        client.set_missing_host_key_policy(policy)
        try:
            self._connect(client)
        except BaseException:
            client.close()
            self.close()  # the hops opened on the way
            raise
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
                allow_agent=not (h.identities_only and h.identity_files) and agent_has_keys(t.auth),
                look_for_keys=not h.identity_files,
                transport_factory=self._transport,
            )
        except HostKeyError:
            raise
        except paramiko.AuthenticationException as exc:
            raise self._auth_error(exc) from None
        except TimeoutError as exc:
            raise ConnectError(
                f"{self.label}: connection to {h.hostname}:{h.port} timed out after "
                f"{t.connect:g} s ({str(exc) or 'no answer'})",
                target=self.label,
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if _failed_authenticating(client):
                # e.g. "No authentication methods available": no key file and an empty,
                # missing or dead agent; or a key file that cannot be read
                raise self._auth_error(exc) from None
            kernel_error = self._tcp.kernel_error if self._tcp is not None else None
            failure = handshake_failure(
                f"{h.hostname}:{h.port}", t.connect, client.get_transport(), exc, kernel_error
            )
            raise ConnectError(f"{self.label}: {failure}", target=self.label) from None

    def _transport(self, *args: Any, **kwargs: Any) -> AeadFirstTransport:
        """paramiko's transport for ``connect``, asking first for the host key types
        known_hosts has for this host, as OpenSSH does (paramiko is given no host key to
        order them by: see :mod:`.hostkeys`)."""
        transport = AeadFirstTransport(*args, **kwargs)
        transport.prefer_host_keys(self._known.algorithms())
        return transport

    def _auth_error(self, exc: Exception) -> AuthenticationError:
        h = self.host
        hint = (
            ""
            if h.identity_files
            else "; no IdentityFile is set for this host: name one in ssh_config or "
            "load the key into ssh-agent (ssh-add)"
        )
        return AuthenticationError(
            f"{self.label}: authentication failed for user {h.user!r} at {h.hostname}:{h.port} "
            f"({str(exc) or type(exc).__name__}){hint}",
            target=self.label,
        )

    def _socket(self) -> socket.socket | paramiko.Channel:
        proxy = self._proxy_socket()
        return self._tcp_socket() if proxy is None else proxy

    def _tcp_socket(self) -> socket.socket:
        """The TCP connection (see :func:`.transport.open_tcp`), kept for its errors."""
        h, t = self.host, self.timeouts
        self._tcp = open_tcp(h.hostname, h.port, t.connect, t.unresponsive)
        return self._tcp

    def lost(self, wait: float = 0.0) -> bool:
        """Whether the connection was open and has died under us (device gone, reset),
        giving a dying one up to ``wait`` s to say so: paramiko ends the channels of a
        dead transport a moment before it marks the transport inactive."""
        transport = self._client.get_transport() if self._client is not None else None
        deadline = time.monotonic() + wait
        while transport is not None and transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)
        return transport is not None and not transport.is_active()

    def lost_reason(self) -> str:
        """Why the connection died, in words: reset, closed by the device, no answer for
        ``timeouts.unresponsive`` s (the kernel gave up on it), or lost at a jump host."""
        if self._jump is not None and self._jump.lost():
            return f"{self._jump.lost_reason()} at jump host {self._jump.label}"
        transport = self._client.get_transport() if self._client is not None else None
        kernel_error = self._tcp.kernel_error if self._tcp is not None else None
        return lost_reason(transport, kernel_error, self.timeouts.unresponsive)

    def lost_error(self, during: str) -> ConnectError:
        h = self.host
        return ConnectError(
            f"{self.label}: lost the connection to {h.hostname}:{h.port} during {during} "
            f"({self.lost_reason()}); whatever ran there ends when the device notices",
            target=self.label,
        )

    def _proxy_socket(self) -> paramiko.Channel | None:
        """A channel to this host through the connection to its (last) jump host."""
        chain = jump_chain(self.host, self.ssh_config)  # the whole chain, checked for loops
        if not chain:
            return None
        self._jump = Connection(
            chain[-1], self.timeouts, self.accept_new_host_keys, self.ssh_config
        )
        transport = self._jump.open().get_transport()
        assert transport is not None
        h = self.host
        try:
            return transport.open_channel(
                "direct-tcpip",
                (h.hostname, h.port),
                ("127.0.0.1", 0),
                timeout=self.timeouts.connect,
            )
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise ConnectError(
                f"{self.label}: jump host {self._jump.label} cannot reach {h.hostname}:{h.port}: "
                f"{exc}",
                target=self.label,
            ) from None

    def start(self, argv: list[str], report_exit: bool = False, private: bool = False) -> SSHPipe:
        """Start ``argv`` on the device, ``exec``'d unless ``report_exit``; with ``private``,
        what it creates is private to the device user (umask 077).

        SSH reports a signal death as "exit-signal", which paramiko ignores; with
        ``report_exit`` a shell waits for the command and prints its status (128+signal)
        on stderr, so a segfault reads as 139 rather than "unknown".
        """
        command = command_line(argv, report_exit, private)
        transport = self.open().get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.timeouts.connect)
            channel.exec_command(command)
            self._count_start()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(
                f"{self.label}: cannot start a command: {exc}", target=self.label
            ) from None
        return SSHPipe(self, channel, argv[0])

    def _count_start(self) -> None:
        with self._starts_lock:
            self.process_starts += 1

    def run(
        self,
        argv: list[str],
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
        private: bool = False,
    ) -> CommandResult:
        """Run ``argv`` to completion within ``timeout`` seconds and collect its output
        (``private``: see :meth:`start`); one stopped on the device for
        ``timeouts.unresponsive`` s is ended (:meth:`.SSHPipe.watched`)."""
        timeout = timeout or self.timeouts.command
        pipe = self.start(argv, private=private)
        if stdin:
            pipe.write(stdin)
        pipe.close()
        status = pipe.finished(timeout)
        if status is None and self.lost():
            raise self.lost_error(f"`{shlex.join(argv)}`")
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
        """The connection's SFTP session, opened once (again after a lost connection)."""
        if self._sftp is None or self.lost():
            try:
                self._sftp = None
                self._sftp = self.open().open_sftp()
                self._count_start()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise ConnectError(
                    f"{self.label}: cannot open SFTP ({exc or type(exc).__name__}); edgeship "
                    "needs the sftp subsystem of the device's sshd (OpenSSH: a 'Subsystem "
                    "sftp' line in sshd_config; Dropbear: install openssh-sftp-server)",
                    target=self.label,
                ) from None
            self._sftp.get_channel().settimeout(self.timeouts.command)
        return self._sftp

    def close(self) -> None:
        """Close the SFTP session, the connection, then its jump hosts (last hop to first)."""
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None


def _failed_authenticating(client: paramiko.SSHClient) -> bool:
    """Whether ``client.connect`` failed after the key exchange and host-key check (those
    raise their own errors), i.e. while authenticating on a live transport."""
    transport = client.get_transport()
    if transport is None or not transport.is_active() or transport.is_authenticated():
        return False
    try:
        return transport.get_remote_server_key() is not None
    except paramiko.SSHException:  # the key exchange never completed
        return False
