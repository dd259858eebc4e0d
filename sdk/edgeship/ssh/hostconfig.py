"""Resolve a target string (an ssh_config alias or ``user@host[:port]``) like OpenSSH does."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ..errors import ConfigError

DEFAULT_SSH_CONFIG = Path("~/.ssh/config")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:@\s]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class HostSpec:
    """Everything needed to open one SSH connection."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    known_hosts: tuple[str, ...] = ()
    proxy_jump: str | None = None
    strict_host_key_checking: str = "yes"

    @property
    def label(self) -> str:
        port = f":{self.port}" if self.port != 22 else ""
        return f"{self.user}@{self.hostname}{port}"


def load_ssh_config(path: Path | None) -> paramiko.SSHConfig:
    """The user's ssh_config (``path`` or ~/.ssh/config); empty when there is none."""
    path = (path or DEFAULT_SSH_CONFIG).expanduser()
    if not path.exists():
        if path != DEFAULT_SSH_CONFIG.expanduser():
            raise ConfigError(f"{path}: no such ssh config file")
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except Exception as exc:  # paramiko raises assorted errors for bad syntax
        raise ConfigError(f"{path}: unreadable ssh config ({exc})") from exc


def resolve_host(spec: str, config: paramiko.SSHConfig) -> HostSpec:
    """``spec`` through ssh_config: HostName, Port, User, IdentityFile, UserKnownHostsFile,
    ProxyJump and StrictHostKeyChecking; explicit ``user@`` and ``:port`` win."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise ConfigError(f"bad target {spec!r}: expected an ssh alias or user@host[:port]")
    host = match["host"].strip("[]")
    found = config.lookup(host)
    port = match["port"] or found.get("port") or 22
    known = found.get("userknownhostsfile")
    return HostSpec(
        alias=spec,
        hostname=found.get("hostname", host),
        port=int(port),
        user=match["user"] or found.get("user") or getpass.getuser(),
        identity_files=tuple(os.path.expanduser(p) for p in found.get("identityfile", [])),
        known_hosts=tuple(os.path.expanduser(p) for p in known.split()) if known else (),
        proxy_jump=found.get("proxyjump"),
        strict_host_key_checking=str(found.get("stricthostkeychecking", "yes")).lower(),
    )
