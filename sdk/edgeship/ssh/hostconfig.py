"""Resolve a target string (an ssh_config alias or ``user@host[:port]``) like OpenSSH does."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from edgeship.core.errors import ConfigError
from edgeship.core.hostnames import target_problem

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "DEFAULT_SSH_CONFIG",
    "HostSpec",
    "jump_chain",
    "jump_host",
    "load_ssh_config",
    "resolve_host",
]

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
    identities_only: bool = False  # only the IdentityFile keys, none other from the agent

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
    ProxyJump, StrictHostKeyChecking and IdentitiesOnly; explicit ``user@`` and ``:port`` win.

    Raises:
        ConfigError: ``spec`` is not a target, or its host or user name carries characters
            OpenSSH refuses (shell syntax, which ``Match exec`` would run): checked before
            ssh_config is read.
    """
    problem = target_problem(spec.strip())
    if problem is not None:
        raise ConfigError(f"bad target {spec!r}: {problem}")
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
        identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
    )


def jump_host(host: HostSpec, config: paramiko.SSHConfig) -> HostSpec | None:
    """The host to connect through to reach ``host``, or None when it is reached directly.

    As OpenSSH runs ``ProxyJump a,b`` for a target as ``ssh -J a b -W target``, this is
    the LAST hop, resolved through ssh_config (its own User, Port, IdentityFile, ...), and
    its ProxyJump becomes the hops before it. A single hop keeps the ProxyJump of its own
    ssh_config entry, so bastions configured in chains are followed as well.
    """
    hops = _jump_hops(host.proxy_jump)
    if not hops:
        return None
    last = resolve_host(hops[-1], config)
    return replace(last, proxy_jump=",".join(hops[:-1])) if len(hops) > 1 else last


def jump_chain(host: HostSpec, config: paramiko.SSHConfig) -> tuple[HostSpec, ...]:
    """Every hop on the way to ``host``, the first one connected to first.

    Raises:
        ConfigError: the ProxyJump entries of ssh_config form a loop.
    """
    path = [host]  # the target, then its hops from the last to the first
    hop = jump_host(host, config)
    while hop is not None:
        if hop in path:
            loop = " via ".join(h.alias for h in [*path, hop])
            raise ConfigError(f"{host.alias}: ProxyJump loops in ssh_config: {loop}")
        path.append(hop)
        hop = jump_host(hop, config)
    return tuple(reversed(path[1:]))


def _jump_hops(proxy_jump: str | None) -> list[str]:
    """``a,user@b:2222,ssh://c`` as ``["a", "user@b:2222", "c"]``; ``none`` is no hop."""
    if not proxy_jump or proxy_jump.strip().lower() == "none":
        return []
    hops = (hop.strip().removeprefix("ssh://").rstrip("/") for hop in proxy_jump.split(","))
    return [hop for hop in hops if hop]
