"""Targets: where the runtime runs. ``local`` is the embedded default; anything else is a
device or group of the targets file, an ssh_config alias, or ``user@host[:port]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ConnectOptions
from ..errors import UsageError
from ..inventory import DEFAULT_DEPLOY_ROOT, DeviceEntry, load_inventory
from ..progress import transfer_reporters
from .base import Target
from .local import LocalTarget

if TYPE_CHECKING:
    from .ssh import SSHTarget

__all__ = ["LocalTarget", "SSHTarget", "Target", "open_target", "open_targets"]


def __getattr__(name: str) -> Any:
    """``SSHTarget``, imported on first use (PEP 562): it loads paramiko, a tenth of a
    second that ``local`` work (``import edgeship``, every CLI start) should not pay."""
    if name == "SSHTarget":
        from .ssh import SSHTarget

        return SSHTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_targets(spec: str = "local", options: ConnectOptions | None = None) -> list[Target]:
    """Every target ``spec`` names (a group expands to its devices), unopened."""
    options = options or ConnectOptions()
    inventory = load_inventory(options.targets_file)
    names = inventory.expand(spec)
    if not names:
        raise UsageError(f"target {spec!r} names no device")
    ssh_config = None
    targets: list[Target] = []
    remote = [name for name in names if name != "local"]
    reporters = transfer_reporters(remote) if options.progress else {}
    for name in names:
        if name == "local":
            targets.append(LocalTarget(python=options.python, timeouts=options.timeouts))
            continue
        # Here, not at the top: they load paramiko, and `local` alone needs none of it.
        from ..ssh.hostconfig import load_ssh_config, resolve_host
        from .ssh import SSHTarget

        ssh_config = ssh_config or load_ssh_config(options.ssh_config)
        entry = inventory.devices.get(name) or DeviceEntry(name=name, host=name)
        targets.append(
            SSHTarget(
                entry.name,
                resolve_host(entry.host, ssh_config),
                python=options.python or entry.python,
                deploy_root=options.deploy_root or entry.deploy_root or DEFAULT_DEPLOY_ROOT,
                timeouts=options.timeouts,
                accept_new_host_keys=options.accept_new_host_keys,
                ssh_config=ssh_config,
                keep_versions=options.keep_versions,
                progress=reporters.get(name),
                labels=entry.labels,
                profile=entry.profile,
            )
        )
    return targets


def open_target(spec: str = "local", options: ConnectOptions | None = None) -> Target:
    """The one target ``spec`` names; a group of several is an error here."""
    targets = open_targets(spec, options)
    if len(targets) != 1:
        raise UsageError(f"target {spec!r} names {len(targets)} devices; this needs exactly one")
    return targets[0]
