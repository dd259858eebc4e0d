"""What a failed or lost connection says: one line naming the host and what happened, for
peers on 127.0.0.1 that are not SSH servers, reset, stay silent or close; no paramiko
traceback on stderr."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from edgeship.core.config import Timeouts
from edgeship.core.errors import ConnectError
from edgeship.ssh.connection import Connection
from edgeship.ssh.hostconfig import HostSpec

TIMEOUTS = Timeouts(connect=2, auth=2, command=5, unresponsive=5)
Behaviour = Callable[[socket.socket], None]


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _http(conn: socket.socket) -> None:
    conn.recv(1000)
    conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def _silent(conn: socket.socket) -> None:
    time.sleep(TIMEOUTS.connect + 3)
    conn.close()


def _reset_after_greeting(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    conn.recv(1000)
    time.sleep(0.2)
    _reset(conn)


def _close_unread(conn: socket.socket) -> None:
    time.sleep(0.2)  # our greeting arrives unread: closing now sends a reset
    _reset(conn)


def _close(conn: socket.socket) -> None:
    conn.recv(1000)
    conn.close()


@contextlib.contextmanager
def _peer(behaviour: Behaviour) -> Iterator[int]:
    """A TCP server on a free 127.0.0.1 port treating each connection with ``behaviour``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # accept() returns now and then to see ``stop``
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=behaviour, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def _connect(port: int) -> ConnectError:
    conn = Connection(HostSpec(f"pi@127.0.0.1:{port}", "127.0.0.1", port, "pi"), TIMEOUTS)
    with pytest.raises(ConnectError) as caught:
        conn.open()
    conn.close()
    return caught.value


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (_http, r"is not an SSH server: it answered 'HTTP/1.0 400 Bad Request' instead"),
        (_silent, r"accepted the connection but did not send an SSH greeting within 2 s"),
        (_reset, r"(reset before any SSH greeting|closed the connection without an SSH)"),
        (_close_unread, r"reset before any SSH greeting"),
        (_close, r"closed the connection without an SSH greeting: not an SSH server"),
        (_reset_after_greeting, r"reset during the SSH handshake"),
    ],
    ids=["http", "silent", "reset", "close-unread", "close", "reset-after-greeting"],
)
def test_a_peer_that_is_no_ssh_server_is_one_clear_line(
    behaviour: Behaviour, expected: str
) -> None:
    with _peer(behaviour) as port:
        started = time.monotonic()
        error = _connect(port)
        took = time.monotonic() - started
    message = str(error)
    assert message.startswith(f"pi@127.0.0.1:{port}: ")
    assert f"127.0.0.1:{port}" in message.removeprefix(f"pi@127.0.0.1:{port}: ")
    assert "\n" not in message and "No existing session" not in message
    assert error.target == f"pi@127.0.0.1:{port}"
    assert re.search(expected, message), message
    assert took < TIMEOUTS.connect + 2


SCRIPT = """
import sys
from edgeship.core.config import Timeouts
from edgeship.core.errors import EdgeshipError
from edgeship.ssh.connection import Connection
from edgeship.ssh.hostconfig import HostSpec
port = int(sys.argv[1])
conn = Connection(HostSpec("t", "127.0.0.1", port, "pi"), Timeouts(connect=2))
try:
    conn.open()
except EdgeshipError as exc:
    print(exc, file=sys.stderr)
conn.close()
import time; time.sleep(0.5)  # the transport thread logs its failure after we return
"""


@pytest.mark.parametrize(
    "behaviour", [_http, _reset_after_greeting, _silent], ids=["http", "reset", "silent"]
)
def test_paramiko_prints_no_traceback(behaviour: Behaviour, tmp_path: Path) -> None:
    """paramiko logs its transport thread's failures; with no logging configured Python
    printed them, tracebacks included, on stderr beside our one line."""
    with _peer(behaviour) as port:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SCRIPT), str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(tmp_path)},  # no SSH_AUTH_SOCK: see _no_keys
        )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("t: "), done.stderr


# ------------------------------------------------------------ a connection lost later


class _Server(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL


@pytest.fixture
def logged_in(tmp_path: Path) -> Iterator[tuple[Connection, list[socket.socket]]]:
    """An open Connection to an in-process SSH server on 127.0.0.1 that lets anyone in;
    the list gets the server's end of the TCP connection."""
    host_key = paramiko.ECDSAKey.generate()
    user_key = paramiko.ECDSAKey.generate()
    user_key.write_private_key_file(str(tmp_path / "id"))
    server_ends: list[socket.socket] = []
    transports: list[paramiko.Transport] = []

    def serve(conn: socket.socket) -> None:
        server_ends.append(conn)
        transport = paramiko.Transport(conn)
        transports.append(transport)
        transport.add_server_key(host_key)
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            transport.start_server(server=_Server())

    with _peer(serve) as port:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
        spec = HostSpec(
            "dev", "127.0.0.1", port, "pi", identity_files=(str(tmp_path / "id"),),
            known_hosts=(str(known),),
        )  # fmt: skip
        conn = Connection(spec, TIMEOUTS)
        conn.open()
        yield conn, server_ends
        conn.close()
        for transport in transports:
            transport.close()


def _wait_lost(conn: Connection) -> None:
    deadline = time.monotonic() + 5
    while not conn.lost() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert conn.lost()


def test_a_reset_connection_is_reported_as_reset(
    logged_in: tuple[Connection, list[socket.socket]],
) -> None:
    conn, server_ends = logged_in
    _reset(server_ends[0])
    _wait_lost(conn)
    message = str(conn.lost_error("profile"))
    assert "(the connection was reset)" in message, message
    assert "no answer" not in message


def test_a_closed_connection_is_reported_as_closed(
    logged_in: tuple[Connection, list[socket.socket]],
) -> None:
    conn, server_ends = logged_in
    server_ends[0].shutdown(socket.SHUT_RDWR)
    _wait_lost(conn)
    message = str(conn.lost_error("profile"))
    assert message.startswith("dev: lost the connection to 127.0.0.1:")
    assert "(the device closed the connection)" in message, message
