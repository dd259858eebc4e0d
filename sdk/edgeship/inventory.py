"""The targets file: named devices and groups, so ``--target lab`` means several boards.

    # edgeship.toml (or --targets FILE)
    [devices.pi-kitchen]
    host = "pi@10.0.0.5"            # an ssh_config alias or user@host[:port]
    python = "/usr/bin/python3"     # optional: a device Python that has the backends
    deploy_root = "~/.edgeship"     # optional
    labels = ["rpi4", "camera"]     # optional
    profile = "raspberry-pi-4"      # optional: skip auto-detection

    [groups]
    lab = ["pi-kitchen", "jetson-1"]

Lookup order: ``--targets FILE``, ``./edgeship.toml``, ``~/.config/edgeship/targets.toml``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

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


def _device(source: Path, name: str, entry: object) -> DeviceEntry:
    if not isinstance(entry, dict) or not isinstance(entry.get("host"), str):
        raise ConfigError(f'{source}: device {name!r} needs a host = "alias or user@host"')
    return DeviceEntry(
        name=name,
        host=entry["host"],
        python=entry.get("python"),
        deploy_root=entry.get("deploy_root", DEFAULT_DEPLOY_ROOT),
        labels=tuple(entry.get("labels", ())),
        profile=entry.get("profile"),
    )
