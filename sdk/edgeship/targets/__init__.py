"""Targets: where the runtime runs. ``local`` is the embedded default; anything else is a
device or group of the targets file, an ssh_config alias, or ``user@host[:port]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import UsageError
from edgeship.core.progress import transfer_reporters
from edgeship.targets.base import Target
from edgeship.targets.devices import DeviceEntry, check_spelling, load_inventory
from edgeship.targets.kinds import OpenContext, open_entry, register_target_kind
from edgeship.targets.local import LocalTarget

if TYPE_CHECKING:
    from edgeship.targets.loaded import Loaded
    from edgeship.targets.ssh import SSHTarget

__all__ = [
    "Loaded",
    "LocalTarget",
    "SSHTarget",
    "Target",
    "open_target",
    "open_targets",
    "register_target_kind",
]


def __getattr__(name: str) -> Any:
    """``SSHTarget`` and ``Loaded``, imported on first use (PEP 562): the first loads
    paramiko, a tenth of a second that ``local`` work (``import edgeship``, every CLI
    start) should not pay; the second numpy and the runtime's reports, which a deploy
    does not use."""
    if name == "SSHTarget":
        from edgeship.targets.ssh import SSHTarget

        return SSHTarget
    if name == "Loaded":
        from edgeship.targets.loaded import Loaded

        return Loaded
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_targets(spec: str = "local", options: ConnectOptions | None = None) -> list[Target]:
    """Every target ``spec`` names (a group expands to its devices), unopened. A name that
    is no device of the targets file is an ssh alias or ``user@host[:port]``."""
    options = options or ConnectOptions()
    inventory = load_inventory(options.targets_file)
    names = inventory.expand(spec)
    if not names:
        raise UsageError(f"target {spec!r} names no device")
    remote = [name for name in names if name != "local"]
    context = OpenContext(options, transfer_reporters(remote) if options.progress else {})
    # a typo of a device is told as one, not as DNS's "name or service not known"
    check_spelling(inventory, spec, context.knows_host)
    entries = [
        DeviceEntry(name="local", host="", kind="local")
        if name == "local"
        else inventory.devices.get(name) or DeviceEntry(name=name, host=name)
        for name in names
    ]
    return [open_entry(entry, context) for entry in entries]


def open_target(spec: str = "local", options: ConnectOptions | None = None) -> Target:
    """The one target ``spec`` names; a group of several is an error here."""
    targets = open_targets(spec, options)
    if len(targets) != 1:
        raise UsageError(f"target {spec!r} names {len(targets)} devices; this needs exactly one")
    return targets[0]
