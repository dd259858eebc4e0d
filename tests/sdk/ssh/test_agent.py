"""The check for a usable SSH agent, against fake agents on a Unix socket."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgeship.ssh.agent import agent_has_keys


@contextmanager
def _fake_agent(sock: Path, reply: bytes | None) -> Iterator[None]:
    """A Unix socket answering every request with ``reply`` (None: never answer)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            if reply is not None:
                conn.sendall(reply)
                return
            conn.recv(64)  # until the client gives up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize(
    ("reply", "usable"),
    [
        (struct.pack(">IBI", 5, 12, 1) + b"key...", True),
        (struct.pack(">IBI", 5, 12, 0), False),  # an agent holding no key
        (struct.pack(">IB", 1, 5), False),  # SSH_AGENT_FAILURE
        (b"", False),  # hangs up
        (None, False),  # never answers: given up after the timeout
    ],
)
def test_the_agent_is_used_only_when_it_lists_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: bytes | None, usable: bool
) -> None:
    sock = tmp_path / "agent.sock"
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    with _fake_agent(sock, reply):
        assert agent_has_keys(timeout=0.5) is usable


def test_a_missing_or_stale_agent_socket_is_no_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert not agent_has_keys(timeout=0.5)
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))
    for path in (stale, tmp_path / "missing.sock", tmp_path):
        monkeypatch.setenv("SSH_AUTH_SOCK", str(path))
        assert not agent_has_keys(timeout=0.5)
