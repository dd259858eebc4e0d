"""The targets file: named devices and groups, so ``--target lab`` means several boards.

    # edgeship.toml (or --targets FILE)
    [devices.pi-kitchen]
    host = "pi@10.0.0.5"            # an ssh_config alias or user@host[:port]
    python = "/usr/bin/python3"     # optional: a device Python that has the backends
    deploy_root = "~/.edgeship"     # optional
    labels = ["rpi4", "camera"]     # optional
    profile = "raspberry-pi-4"      # optional: skip auto-detection
    kind = "ssh"                    # optional: the kind of target (edgeship.targets.kinds)

    [groups]
    lab = ["pi-kitchen", "jetson-1"]

Lookup order: ``--targets FILE``, ``./edgeship.toml``, ``~/.config/edgeship/targets.toml``.

A name that is no device or group here is taken as an ssh alias or ``user@host[:port]``;
one that is also unknown to ssh_config and DNS but close to a device or group name is a
typo, refused with a suggestion (:func:`check_spelling`) rather than left to fail in DNS.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_DEPLOY_ROOT",
    "DEFAULT_FILES",
    "DeviceEntry",
    "Inventory",
    "check_spelling",
    "find_inventory_file",
    "load_inventory",
    "suggest",
]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from edgeship.core.errors import ConfigError, UsageError
from edgeship.core.hostnames import target_problem

DEFAULT_FILES = (Path("edgeship.toml"), Path("~/.config/edgeship/targets.toml"))
DEFAULT_DEPLOY_ROOT = "~/.edgeship"


@dataclass(frozen=True)
class DeviceEntry:
    name: str
    host: str
    python: str | None = None
    deploy_root: str = DEFAULT_DEPLOY_ROOT
    labels: tuple[str, ...] = ()
    profile: str | None = None
    kind: str = "ssh"


@dataclass
class Inventory:
    devices: dict[str, DeviceEntry] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    source: Path | None = None

    def expand(self, spec: str) -> list[str]:
        """Device names or raw ssh specs for ``spec``: a group, a device, a comma list,
        ``local``, or anything else (an ssh alias / user@host[:port])."""
        names: list[str] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            members = self.groups.get(part, [part])
            names.extend(m for m in members if m not in names)
        return names


def find_inventory_file(path: Path | None) -> Path | None:
    if path is not None:
        if not path.expanduser().is_file():
            raise ConfigError(f"{path}: no such targets file")
        return path.expanduser()
    return next((p.expanduser() for p in DEFAULT_FILES if p.expanduser().is_file()), None)


def load_inventory(path: Path | None = None) -> Inventory:
    found = find_inventory_file(path)
    if found is None:
        return Inventory()
    try:
        data = tomllib.loads(found.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{found}: unreadable targets file ({exc})") from exc
    devices = {name: _device(found, name, entry) for name, entry in data.get("devices", {}).items()}
    groups = {str(g): [str(m) for m in members] for g, members in data.get("groups", {}).items()}
    for group, members in groups.items():
        unknown = [m for m in members if m not in devices]
        if unknown:
            raise ConfigError(f"{found}: group {group!r} names unknown device(s) {unknown}")
        if group in devices:
            raise ConfigError(f"{found}: {group!r} is both a device and a group")
    return Inventory(devices, groups, found)


def _check_host(source: Path, name: str, host: str) -> None:
    """Refuse a host OpenSSH would refuse: ssh_config's ``Match exec`` runs it in a shell."""
    problem = target_problem(host.strip()) if host else None
    if problem is not None:
        raise ConfigError(f"{source}: device {name!r}: bad host {host!r}: {problem}")


def _device(source: Path, name: str, entry: object) -> DeviceEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: device {name!r} must be a table")
    kind = str(entry.get("kind", "ssh"))
    if not isinstance(entry.get("host", ""), str) or (kind == "ssh" and not entry.get("host")):
        raise ConfigError(f'{source}: device {name!r} needs a host = "alias or user@host"')
    _check_host(source, name, entry.get("host", ""))
    return DeviceEntry(
        name=name,
        host=entry.get("host", ""),
        python=entry.get("python"),
        deploy_root=entry.get("deploy_root", DEFAULT_DEPLOY_ROOT),
        labels=tuple(entry.get("labels", ())),
        profile=entry.get("profile"),
        kind=kind,
    )


# ------------------------------------------------------------------------------ typos


def suggest(inventory: Inventory, name: str) -> str | None:
    """The device, group or ``local`` that ``name`` looks like a misspelling of; None when
    ``name`` is one of them, is a ``user@host[:port]``, or is close to none."""
    known = ["local", *inventory.devices, *inventory.groups]
    if name in known or "@" in name or ":" in name:
        return None
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return close[0] if close else None


def check_spelling(inventory: Inventory, spec: str, known_elsewhere: Callable[[str], bool]) -> None:
    """Refuse a name in ``spec`` that is close to a device or group name but is none, and
    that ``known_elsewhere`` (ssh_config, DNS: see :func:`edgeship.api.check_target`) does
    not know: ``unknown target 'pi-kitchn'; did you mean 'pi-kitchen'?``."""
    for name in inventory.expand(spec):
        suggestion = suggest(inventory, name)
        if suggestion is not None and not known_elsewhere(name):
            raise UsageError(
                f"unknown target {name!r}; did you mean {suggestion!r}?",
                target=name,
                suggestion=suggestion,
            )
