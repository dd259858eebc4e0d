"""known_hosts as OpenSSH reads it: markers, patterns and hashed names; a revoked key is
refused. Connections run against an in-memory paramiko server on a socket pair."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from edgeship.core.config import Timeouts
from edgeship.core.errors import AuthenticationError, ConfigError, HostKeyError
from edgeship.ssh.connection import Connection
from edgeship.ssh.hostconfig import HostSpec
from edgeship.ssh.hostkeys import fingerprint, host_matches, known_hosts_name, read_known_hosts

HOST = "board.lan"
TIMEOUTS = Timeouts(connect=5, auth=5, command=5)


@pytest.fixture(scope="module")
def key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


@pytest.fixture(scope="module")
def other_key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


def _line(patterns: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker} {patterns} {key.get_name()} {key.get_base64()}".strip()


def _hashed(name: str) -> str:
    salt = b"s" * 20
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("patterns", "name", "matches"),
    [
        (HOST, HOST, True),
        ("BOARD.lan", HOST, True),  # host names are case-insensitive
        ("other,board.lan", HOST, True),
        ("*.lan", HOST, True),
        ("board.l?n", HOST, True),
        ("*.lan,!board.lan", HOST, False),  # a negation wins
        ("*", "[10.0.0.5]:2222", True),
        ("[10.0.0.5]:2222", "[10.0.0.5]:2222", True),
        ("10.0.0.5", "[10.0.0.5]:2222", False),  # another port is another host
        ("[10.0.0.?]:2222", "[10.0.0.5]:2222", True),  # [] are literal, not a class
        (_hashed(HOST), HOST, True),
        (_hashed("other"), HOST, False),
        ("|1|junk|junk", HOST, False),
    ],
)
def test_host_patterns_match_as_in_openssh(patterns: str, name: str, matches: bool) -> None:
    assert host_matches(name, patterns) is matches


def test_known_hosts_name_carries_a_port_other_than_22() -> None:
    assert known_hosts_name("pi", 22) == "pi"
    assert known_hosts_name("pi", 2222) == "[pi]:2222"


def test_marker_lines_and_junk_do_not_break_reading(
    tmp_path: Path, key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    path = _file(
        tmp_path,
        "# a comment",
        "",
        _line("*.example.com", other_key, "@cert-authority"),
        _line("*.lan", other_key, "@cert-authority"),
        _line("*", other_key, "@revoked"),
        _line("gone.lan", key, "@revoked"),
        _line("board.lan", key, "@unknown-marker"),
        "board.lan ssh-ed25519 not!base64",
        "board.lan ssh-unknown-type AAAAB3NzaC1yc2E=",
        "board.lan",
        _line("*.lan", key),
    )
    with pytest.raises(Exception):  # noqa: B017 - what paramiko's own loader does with it
        paramiko.HostKeys(str(path))
    known = read_known_hosts([path], HOST)
    assert known.keys == (key,)
    assert [k for k, _ in known.revoked] == [other_key]
    assert known.revoked[0][1] == f"{path}:5"
    assert known.authorities == (f"{path}:4",)
    gone = read_known_hosts([path], "gone.lan")
    assert gone.keys == () and [k for k, _ in gone.revoked] == [other_key, key]


def test_a_revoked_key_is_never_trusted_even_if_listed(tmp_path: Path, key: paramiko.PKey) -> None:
    path = _file(tmp_path, _line(HOST, key), _line("*", key, "@revoked"))
    assert read_known_hosts([path], HOST).keys == ()


def test_missing_files_are_skipped_and_unreadable_ones_named(tmp_path: Path) -> None:
    assert read_known_hosts([tmp_path / "absent"], HOST).keys == ()
    with pytest.raises(ConfigError, match="cannot read known_hosts"):
        read_known_hosts([tmp_path], HOST)  # a directory


# -------------------------------------------------------------------- real handshakes


class _Peer:
    """An SSH server with ``key`` on one end of a socket pair; it lets nobody log in."""

    def __init__(self, *keys: paramiko.PKey) -> None:
        self.client_sock, server_sock = socket.socketpair()
        self.transport = paramiko.Transport(server_sock)
        for key in keys:
            self.transport.add_server_key(key)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            self.transport.start_server(server=paramiko.ServerInterface())

    def close(self) -> None:
        self.transport.close()
        self.client_sock.close()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Path, type[_Peer]]]:
    """Connections whose TCP socket is a :class:`_Peer`; known_hosts is ``tmp/known_hosts``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    peers: list[_Peer] = []

    def tcp(self: Connection) -> socket.socket:
        return peers[-1].client_sock

    monkeypatch.setattr(Connection, "_tcp_socket", tcp)

    class Peer(_Peer):
        def __init__(self, *keys: paramiko.PKey) -> None:
            super().__init__(*keys)
            peers.append(self)

    yield tmp_path / "known_hosts", Peer
    for peer in peers:
        peer.close()


def _open(known_hosts: Path, accept_new: bool = False) -> None:
    spec = HostSpec(HOST, HOST, 22, "pi", known_hosts=(str(known_hosts),))
    conn = Connection(spec, TIMEOUTS, accept_new_host_keys=accept_new)
    try:
        conn.open()
    finally:
        conn.close()


def test_cert_authority_lines_are_skipped_and_the_key_line_trusted(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    known_hosts, peer = connect
    _file(known_hosts.parent, _line("*", other_key, "@cert-authority"), _line(HOST, key))
    peer(key)
    with pytest.raises(AuthenticationError):  # past the host-key check: our peer lets no one in
        _open(known_hosts)


def test_a_host_known_only_through_a_cert_authority_says_so(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    known_hosts, peer = connect
    _file(known_hosts.parent, _line("*.lan", other_key, "@cert-authority"))
    peer(key)
    with pytest.raises(HostKeyError, match=r"unknown host key .* through @cert-authority"):
        _open(known_hosts)


@pytest.mark.parametrize("listed", [False, True], ids=["revoked-only", "also-listed"])
@pytest.mark.parametrize("accept_new", [False, True], ids=["strict", "accept-new"])
def test_a_revoked_key_is_refused(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey, listed: bool, accept_new: bool
) -> None:
    known_hosts, peer = connect
    lines = [_line("*", key, "@revoked")] + ([_line(HOST, key)] if listed else [])
    _file(known_hosts.parent, *lines)
    peer(key)
    with pytest.raises(HostKeyError) as caught:
        _open(known_hosts, accept_new)
    message = str(caught.value)
    assert message.startswith(f"{HOST}: host key ecdsa-sha2-nistp256 SHA256:")
    assert f"is REVOKED (@revoked in {known_hosts}:1)" in message
    assert known_hosts.read_text().count("\n") == len(lines)  # nothing was added


def test_a_revoked_key_in_place_of_a_known_one_is_revoked_not_changed(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    known_hosts, peer = connect
    _file(known_hosts.parent, _line(HOST, other_key), _line(HOST, key, "@revoked"))
    peer(key)
    with pytest.raises(HostKeyError, match="REVOKED"):
        _open(known_hosts)


@pytest.mark.parametrize("stale_first", [True, False], ids=["stale-first", "stale-last"])
@pytest.mark.parametrize("accept_new", [False, True], ids=["strict", "accept-new"])
def test_any_of_the_hosts_keys_of_one_type_is_accepted_as_openssh_does(
    connect: tuple[Path, type[_Peer]],
    key: paramiko.PKey,
    other_key: paramiko.PKey,
    stale_first: bool,
    accept_new: bool,
) -> None:
    """Two ECDSA lines for the host, one stale: the host offers the other, and connects."""
    known_hosts, peer = connect
    lines = [_line(HOST, other_key), _line(HOST, key)]
    _file(known_hosts.parent, *(lines if stale_first else lines[::-1]))
    peer(key)
    with pytest.raises(AuthenticationError):  # past the host-key check
        _open(known_hosts, accept_new)
    assert known_hosts.read_text().count("\n") == 2  # nothing was added


def test_a_hashed_line_beside_a_stale_plain_one_is_accepted(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    known_hosts, peer = connect
    _file(known_hosts.parent, _line(HOST, other_key), _line(_hashed(HOST), key))
    peer(key)
    with pytest.raises(AuthenticationError):
        _open(known_hosts)


@pytest.mark.parametrize("accept_new", [False, True], ids=["strict", "accept-new"])
def test_a_key_no_line_names_is_changed_when_the_host_is_known(
    connect: tuple[Path, type[_Peer]],
    key: paramiko.PKey,
    other_key: paramiko.PKey,
    accept_new: bool,
) -> None:
    known_hosts, peer = connect
    _file(known_hosts.parent, _line(HOST, other_key), _line("other.lan", key))
    peer(key)
    with pytest.raises(HostKeyError) as caught:
        _open(known_hosts, accept_new)
    message = str(caught.value)
    assert f"host key CHANGED: known_hosts has {fingerprint(other_key)}" in message
    assert f"the host offered {fingerprint(key)}" in message
    assert known_hosts.read_text().count("\n") == 2  # nothing was added


def test_the_key_type_known_hosts_has_is_asked_for_first(
    connect: tuple[Path, type[_Peer]], key: paramiko.PKey
) -> None:
    """The host has an Ed25519 key too, which paramiko would ask for first; known_hosts
    has its ECDSA key: as OpenSSH, that is the one asked for, and it matches."""
    known_hosts, peer = connect
    _file(known_hosts.parent, _line(HOST, key))
    peer(paramiko.Ed25519Key.from_private_key_file(str(_ed25519(known_hosts.parent))), key)
    with pytest.raises(AuthenticationError):
        _open(known_hosts)


def test_an_rsa_key_asks_for_its_sha2_signatures_first(key: paramiko.PKey) -> None:
    rsa = paramiko.RSAKey.generate(1024)
    known = read_known_hosts([], HOST)
    assert known.algorithms() == []
    known = type(known)(HOST, (rsa, key, rsa))
    assert known.algorithms() == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", key.get_name()]


def _ed25519(directory: Path) -> Path:
    """A new Ed25519 private key file (paramiko cannot generate one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = directory / "ed25519"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return path
