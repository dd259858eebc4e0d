"""Kinds of target by name, as backends are in the runtime: ``local``, ``ssh``, and any
kind registered by a module of its own (an adb or serial target needs nothing else).

A device in the targets file names its kind (``kind = "ssh"``, the default); ``local``
is always the local kind. A factory gets the device's entry and an :class:`OpenContext`
(connect options, progress, the ssh config read once per call) and returns it unopened.
"""

from __future__ import annotations

import fnmatch
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import ConfigError
from edgeship.core.progress import Progress
from edgeship.targets.base import Target
from edgeship.targets.devices import DEFAULT_DEPLOY_ROOT, DeviceEntry
from edgeship.targets.local import LocalTarget

if TYPE_CHECKING:
    import paramiko

__all__ = ["OpenContext", "TargetFactory", "open_entry", "register_target_kind", "target_kinds"]


@dataclass
class OpenContext:
    """What every target opened by one call shares."""

    options: ConnectOptions
    progress: dict[str, Progress] = field(default_factory=dict)
    _ssh_config: Any = None

    def ssh_config(self) -> paramiko.SSHConfig:
        """The ssh config (``--ssh-config`` or ~/.ssh/config), read on first use."""
        if self._ssh_config is None:
            from edgeship.ssh.hostconfig import load_ssh_config  # loads paramiko

            self._ssh_config = load_ssh_config(self.options.ssh_config)
        return self._ssh_config

    def knows_host(self, name: str) -> bool:
        """A ``Host`` of the ssh config (a pattern other than ``*`` matching it counts), or
        a name DNS resolves. Asked only of a name that looks like a typo of a device."""
        patterns = [
            h for h in self.ssh_config().get_hostnames() if h != "*" and not h.startswith("!")
        ]
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return True
        try:
            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return False
        return True


TargetFactory = Callable[[DeviceEntry, OpenContext], Target]

_KINDS: dict[str, TargetFactory] = {}


def register_target_kind(kind: str, factory: TargetFactory) -> None:
    """Make ``kind = "<kind>"`` in a targets file open targets with ``factory``."""
    if kind in _KINDS:
        raise ValueError(f"target kind {kind!r} is already registered")
    _KINDS[kind] = factory


def target_kinds() -> list[str]:
    return sorted(_KINDS)


def open_entry(entry: DeviceEntry, context: OpenContext) -> Target:
    factory = _KINDS.get(entry.kind)
    if factory is None:
        raise ConfigError(
            f"device {entry.name!r}: unknown kind {entry.kind!r} "
            f"(known: {', '.join(target_kinds())})"
        )
    return factory(entry, context)


def _local(entry: DeviceEntry, context: OpenContext) -> Target:
    options = context.options
    return LocalTarget(
        python=options.python or entry.python,
        timeouts=options.timeouts,
        deploy_root=options.deploy_root or entry.deploy_root or DEFAULT_DEPLOY_ROOT,
        keep_versions=options.keep_versions,
        lock_wait=options.lock_wait,
    )


def _ssh(entry: DeviceEntry, context: OpenContext) -> Target:
    # Here, not at the top: they load paramiko, and `local` alone needs none of it.
    from edgeship.ssh.hostconfig import resolve_host
    from edgeship.targets.ssh import SSHTarget

    options = context.options
    return SSHTarget(
        entry.name,
        resolve_host(entry.host, context.ssh_config()),
        python=options.python or entry.python,
        deploy_root=options.deploy_root or entry.deploy_root or DEFAULT_DEPLOY_ROOT,
        timeouts=options.timeouts,
        accept_new_host_keys=options.accept_new_host_keys,
        ssh_config=context.ssh_config(),
        keep_versions=options.keep_versions,
        lock_wait=options.lock_wait,
        progress=context.progress.get(entry.name),
        labels=entry.labels,
        board=entry.profile,
    )


register_target_kind("local", _local)
register_target_kind("ssh", _ssh)
