"""The Device record and the per-device operations tests use.

Fault injection lives here because every fault is a property of one device:
drop its live connections, partition it from the host, or shrink its disk.
Each has an undo, so a session-scoped testbed can be reused across tests.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from . import emulated, netns
from ._proc import DEFAULT_TIMEOUT, TestbedError, descendants, kill_all, read_pid, run
from .cleanup import unmount


@dataclass(frozen=True)
class Device:
    """One simulated board: a namespace, an sshd and a user of its own."""

    name: str  # ssh_config alias and targets-file key
    address: str
    port: int
    user: str
    home: Path
    deploy_root: str  # as written in edgeship.toml ("~/.edgeship")
    namespace: str
    host_key_fingerprint: str  # "SHA256:...", as ssh-keygen -l prints it
    cpus: tuple[int, ...]
    host_address: str  # the root-namespace end of the /30
    host_veth: str
    cpu_cap: float | None = None  # cores its SSH sessions may use (cgroup quota); None: no cap
    arch: str | None = None  # an emulated board's arch ("aarch64"); None: this machine's
    root: str | None = None  # an emulated board's root on this machine (see .emulated)

    @property
    def deploy_path(self) -> Path:
        """The deploy root as an absolute path on this machine."""
        return self.home / self.deploy_root.removeprefix("~/")

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible form (state file, CLI output)."""
        raw = asdict(self)
        raw["home"] = str(self.home)
        raw["cpus"] = list(self.cpus)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Device:
        """Inverse of :meth:`to_dict`."""
        fields = dict(raw)
        fields["home"] = Path(str(fields["home"]))
        fields["cpus"] = tuple(fields["cpus"])  # type: ignore[call-overload]
        return cls(**fields)  # type: ignore[arg-type]


def run_as(
    device: Device,
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the device's user, in its namespace, pinned to its cpus (on an
    emulated board: its own binaries, in its root, from its home)."""
    entry = pwd.getpwnam(device.user)
    as_user = (
        emulated.in_root(device.root, argv, entry)
        if device.root
        else [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--init-groups",
            "--",
            *argv,
        ]
    )
    cmd = ["nsenter", f"--net=/run/netns/{device.namespace}", *as_user]
    if device.cpus:
        cmd = ["taskset", "-c", ",".join(map(str, device.cpus)), *cmd]
    env = {
        "HOME": str(device.home),
        "USER": device.user,
        "LOGNAME": device.user,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    }
    return run(cmd, timeout=timeout, input=input, check=check, env=env, cwd=device.home)


def kill_sessions(pidfile: Path) -> int:
    """SIGKILL every per-connection child of the sshd in ``pidfile``.

    Live connections drop at once (the kernel closes their sockets), while the
    listener keeps accepting new ones. Returns how many processes were killed.
    """
    listener = read_pid(pidfile)
    if listener is None:
        raise TestbedError(f"no sshd pid in {pidfile}")
    victims = descendants(listener)
    kill_all(victims)
    return len(victims)


def blackhole(device: Device, on: bool) -> None:
    """Make the device silently unreachable (connects time out) or undo it."""
    netns.set_blackhole(device.namespace, device.host_address, on)


def small_disk(device: Device, size_kb: int) -> None:
    """Mount a ``size_kb`` tmpfs on the deploy root so writes hit ENOSPC.

    Whatever the deploy root held is hidden (not lost) until
    :func:`restore_disk` unmounts the tmpfs.
    """
    if size_kb <= 0:
        raise TestbedError(f"size_kb must be positive, got {size_kb}")
    entry = pwd.getpwnam(device.user)
    path = device.deploy_path
    restore_disk(device)
    path.mkdir(mode=0o755, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    opts = f"size={size_kb}k,uid={entry.pw_uid},gid={entry.pw_gid},mode=0755"
    run(["mount", "-t", "tmpfs", "-o", opts, f"edgeship-testbed-{device.name}", str(path)])


def restore_disk(device: Device) -> None:
    """Undo :func:`small_disk` (no-op when no tmpfs is mounted)."""
    path = device.deploy_path
    while os.path.ismount(path):
        unmount(str(path))
