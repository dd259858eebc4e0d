"""A ProxyJump chain as nested Connections (paramiko's network I/O faked out), and the
host-key policy each one gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from edgeship.core.config import Timeouts
from edgeship.core.errors import AuthenticationError, ConfigError
from edgeship.ssh.connection import Connection
from edgeship.ssh.hostconfig import HostSpec, resolve_host
from edgeship.ssh.hostkeys import AcceptNew, RefuseUnknown
from edgeship.ssh.pipe import command_line

CONFIG = """
Host a
    HostName 10.0.0.1
    User alice
    Port 2201

Host b
    HostName 10.0.0.2
    User bob

Host t
    HostName 10.0.0.9
    ProxyJump a,b
    StrictHostKeyChecking accept-new

Host loop
    ProxyJump loop
"""
TIMEOUTS = Timeouts(connect=3, auth=4, command=5)


@dataclass
class FakeTransport:
    """Stands for the SSH session of one Connection; ``sock`` is what it runs over."""

    host: str
    sock: object
    active: bool = True
    opened: list[tuple[str, str, int, float]] = field(default_factory=list)

    def is_active(self) -> bool:
        return self.active

    def open_channel(
        self, kind: str, dest: tuple[str, int], src: tuple[str, int], timeout: float
    ) -> tuple[str, str, str, int]:
        self.opened.append((kind, *dest, timeout))
        return ("channel", self.host, *dest)

    def close(self) -> None:
        self.active = False


@dataclass
class Network:
    """Every session opened, in order; a host named in ``refuse`` fails authentication."""

    sessions: list[FakeTransport] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def transport(self, hostname: str) -> FakeTransport:
        (found,) = [t for t in self.sessions if t.host == hostname]
        return found


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Network:
    net = Network()
    monkeypatch.setenv("HOME", str(tmp_path))  # no real known_hosts is read

    def connect(self: Connection, client: paramiko.SSHClient) -> None:
        sock = self._socket()
        if self.host.hostname in net.refuse:
            raise AuthenticationError(f"{self.label}: refused", target=self.label)
        transport = FakeTransport(self.host.hostname, sock)
        net.sessions.append(transport)
        client._transport = transport  # type: ignore[assignment]

    def tcp(self: Connection) -> tuple[str, str, int]:
        return ("tcp", self.host.hostname, self.host.port)

    monkeypatch.setattr(Connection, "_connect", connect)
    monkeypatch.setattr(Connection, "_tcp_socket", tcp)
    return net


def _connection(alias: str = "t", accept_new_host_keys: bool = False) -> Connection:
    config = paramiko.SSHConfig.from_text(CONFIG)
    return Connection(resolve_host(alias, config), TIMEOUTS, accept_new_host_keys, config)


def _hops(conn: Connection) -> list[Connection]:
    """The jump Connections of ``conn``, its last hop first."""
    hops = []
    while conn._jump is not None:
        conn = conn._jump
        hops.append(conn)
    return hops


def test_each_hop_is_reached_through_the_one_before_it(network: Network) -> None:
    conn = _connection()
    conn.open()
    assert [h.host.alias for h in _hops(conn)] == ["b", "a"]
    assert [t.host for t in network.sessions] == ["10.0.0.1", "10.0.0.2", "10.0.0.9"]
    a, b, t = network.sessions
    assert a.sock == ("tcp", "10.0.0.1", 2201)  # only the first hop is a TCP connection
    assert a.opened == [("direct-tcpip", "10.0.0.2", 22, TIMEOUTS.connect)]
    assert b.sock == ("channel", "10.0.0.1", "10.0.0.2", 22)
    assert b.opened == [("direct-tcpip", "10.0.0.9", 22, TIMEOUTS.connect)]
    assert t.sock == ("channel", "10.0.0.2", "10.0.0.9", 22)


def test_every_hop_keeps_the_timeouts_and_refuses_unknown_host_keys(network: Network) -> None:
    """``t``'s own ``StrictHostKeyChecking accept-new`` is for ``t`` alone."""
    conn = _connection()
    conn.open()
    assert conn._client is not None and isinstance(conn._client._policy, AcceptNew)
    for hop in _hops(conn):
        assert hop.timeouts is TIMEOUTS
        assert not hop.accept_new
        assert hop._client is not None
        assert isinstance(hop._client._policy, RefuseUnknown)


def test_the_users_opt_in_to_new_host_keys_holds_for_every_hop(network: Network) -> None:
    conn = _connection(accept_new_host_keys=True)
    conn.open()
    assert all(hop.accept_new for hop in _hops(conn))


def test_close_closes_every_hop(network: Network) -> None:
    conn = _connection()
    conn.open()
    hops = _hops(conn)
    conn.close()
    assert not any(t.active for t in network.sessions)
    assert conn._jump is None and all(h._client is None and h._jump is None for h in hops)


def test_a_hop_that_fails_closes_the_hops_opened_before_it(network: Network) -> None:
    network.refuse.add("10.0.0.2")
    conn = _connection()
    with pytest.raises(AuthenticationError, match="b: refused"):
        conn.open()
    assert [t.host for t in network.sessions] == ["10.0.0.1"]
    assert not network.transport("10.0.0.1").active
    assert conn._jump is None


def test_a_dead_connection_is_reopened_with_fresh_hops(network: Network) -> None:
    conn = _connection()
    conn.open()
    network.transport("10.0.0.9").active = False  # the target's session dropped
    conn.open()
    assert len(network.sessions) == 6
    assert [t.active for t in network.sessions] == [False] * 3 + [True] * 3


def test_a_proxyjump_loop_fails_before_connecting(network: Network) -> None:
    with pytest.raises(ConfigError, match="ProxyJump loops"):
        _connection("loop").open()
    assert network.sessions == []


@pytest.mark.parametrize(
    ("setting", "accepts"),
    [("yes", False), ("ask", False), ("accept-new", True), ("no", True), ("off", True)],
)
def test_strict_host_key_checking_of_the_ssh_config(setting: str, accepts: bool) -> None:
    spec = HostSpec("b", "10.0.0.9", 22, "pi", strict_host_key_checking=setting)
    assert Connection(spec, TIMEOUTS).accept_new is accepts


def test_a_private_command_runs_under_umask_077_its_arguments_quoted() -> None:
    argv = ["python3", "-m", "venv", "/r/my venv"]
    group = "echo edgeship-group:$$ >&2; "  # its process group, for SSHPipe.frozen
    assert command_line(argv, False) == f"{group}exec python3 -m venv '/r/my venv'"
    assert command_line(argv, False, private=True) == (
        f"umask 077 && {group}exec python3 -m venv '/r/my venv'"
    )
