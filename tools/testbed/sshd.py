"""Keys, sshd configuration and the sshd process of one device.

The daemon is the distribution's real ``/usr/sbin/sshd`` so that end-to-end
tests exercise the same protocol, sftp subsystem and session limits a board
would have. It runs in the foreground (``-D``) with logs on stderr (``-e``)
redirected to a per-device file, which is the first place to look when a
connection misbehaves.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import subprocess
import time
from pathlib import Path

from ._proc import TestbedError, alive, run

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


def generate_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at ``path`` and return the public key line."""
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


def fingerprint(public_key_line: str) -> str:
    """SHA256 fingerprint of a public key line, formatted like OpenSSH prints it."""
    blob = base64.b64decode(public_key_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def sshd_version(root: Path | None = None) -> tuple[int, int]:
    """(major, minor) of the installed OpenSSH server, e.g. (9, 2); with ``root``, of the
    one in that (emulated board's) root."""
    argv = [str(SSHD), "-V"] if root is None else ["chroot", str(root), str(SSHD), "-V"]
    proc = run(argv, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", proc.stderr + proc.stdout)
    if match is None:
        raise TestbedError(f"cannot parse sshd version from: {proc.stderr.strip()}")
    return int(match.group(1)), int(match.group(2))


def render_config(
    *, address: str, port: int, user: str, host_key: Path, pidfile: Path, version: tuple[int, int]
) -> str:
    """sshd_config for one device: key auth only, many concurrent channels."""
    lines = [
        f"ListenAddress {address}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {pidfile}",
        f"AllowUsers {user}",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "UsePAM no",
        # Homes live under a shared base; don't let path modes veto logins.
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding yes",
        "AcceptEnv LANG LC_*",
        "Subsystem sftp internal-sftp",
        # Tests open many channels and connections at once.
        "MaxSessions 256",
        "MaxStartups 256:30:512",
        "MaxAuthTries 10",
        "LoginGraceTime 30",
        "LogLevel VERBOSE",
    ]
    if version >= (9, 8):
        # Newer sshd penalises clients whose sessions die; fault tests do that on purpose.
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


def start(
    *, namespace: str, config: Path, log: Path, cpus: tuple[int, ...], root: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start sshd inside ``namespace`` (optionally pinned to ``cpus``).

    ``nsenter --net`` is used instead of ``ip netns exec`` on purpose: it
    joins only the network namespace, so the daemon shares the root mount
    namespace and a tmpfs mounted later by :func:`small_disk` is visible to
    its sessions (the root mount tree here is often ``private``, so mounts
    would not propagate into the private mount namespace ip-netns creates).
    Both wrappers exec, so the returned pid is sshd's own.

    With ``root`` (an emulated board, see :mod:`.emulated`), the sshd is the one in that
    root, chrooted there (``chroot`` execs too); ``config`` is bound at the same path.
    """
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    daemon = [str(SSHD), "-D", "-e", "-f", str(config)]
    if root is not None:
        daemon = ["chroot", str(root), *daemon]
    argv = ["nsenter", f"--net=/run/netns/{namespace}", *daemon]
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
    with log.open("ab") as log_file:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        except OSError as exc:
            raise TestbedError(f"cannot start sshd: {' '.join(argv)}: {exc}") from exc


def wait_banner(
    proc: subprocess.Popen[bytes], address: str, port: int, log: Path, timeout: float = 15.0
) -> None:
    """Block until sshd at ``address:port`` sends its ``SSH-2.0`` banner."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None or not alive(proc.pid):
            raise TestbedError(f"sshd for {address} exited early; log {log}:\n{_tail(log)}")
        try:
            if _read_banner(address, port).startswith(b"SSH-2.0"):
                return
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.02)
    raise TestbedError(
        f"sshd at {address}:{port} sent no banner in {timeout:.0f}s "
        f"({last_error}); log {log}:\n{_tail(log)}"
    )


def _read_banner(address: str, port: int) -> bytes:
    """Connect and read the first line the server sends."""
    with socket.create_connection((address, port), timeout=2.0) as sock:
        data = b""
        while b"\n" not in data and len(data) < 256:
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
        return data


def _tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
