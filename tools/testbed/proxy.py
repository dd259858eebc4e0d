"""A CONNECT proxy on the host for emulated boards: their way to PyPI, and nowhere else.

A testbed device's namespace routes only to the host. An emulated board is set up the
way a user sets up a board with internet, ``edgeship setup`` pip-installing from PyPI:
its ``/etc/pip.conf`` names this proxy, which listens on the host's end of the device's
veth pair and tunnels ``CONNECT`` to :data:`ALLOWED` hosts on port 443 only (anything
else gets a 403), each tunnel closed after :data:`IDLE_S` seconds of silence.

It runs as a script in a process of its own, so a testbed brought up by the CLI keeps
it after the CLI exits: ``python proxy.py --listen ADDR:PORT --name DEVICE`` (the name
only marks the process, for cleanup). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import socketserver
import sys
from collections.abc import Sequence

ALLOWED = frozenset({"pypi.org", "files.pythonhosted.org"})
PORT = 3128
IDLE_S = 120.0
CONNECT_TIMEOUT_S = 30.0
MAX_HEADER_BYTES = 16384


class _Tunnel(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = self._read_head()
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or parts[0] != b"CONNECT":
            self._answer(405, "only CONNECT is proxied")
            return
        host, _, port = parts[1].decode("ascii", "replace").rpartition(":")
        if host not in ALLOWED or port != "443":
            self._answer(403, f"{host}:{port} is not a package registry this proxy serves")
            return
        try:
            upstream = socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            self._answer(502, f"cannot reach {host}: {exc}")
            return
        with upstream:
            self._answer(200, "Connection established")
            _relay(self.connection, upstream)

    def _read_head(self) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEADER_BYTES:
            line = self.rfile.readline(MAX_HEADER_BYTES)
            if not line:
                break
            head += line
        return head

    def _answer(self, status: int, reason: str) -> None:
        self.wfile.write(f"HTTP/1.1 {status} {reason}\r\n\r\n".encode())
        self.wfile.flush()


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until one side closes or both are silent for IDLE_S."""
    ends = {client: upstream, upstream: client}
    while True:
        readable, _, _ = select.select(list(ends), [], [], IDLE_S)
        if not readable:
            return
        for source in readable:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            ends[source].sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(address: str, port: int = PORT) -> None:
    with _Server((address, port), _Tunnel) as server:
        server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT")
    parser.add_argument("--name", required=True, help="the device it serves (for cleanup)")
    args = parser.parse_args(argv)
    address, _, port = args.listen.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        serve(address, int(port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
