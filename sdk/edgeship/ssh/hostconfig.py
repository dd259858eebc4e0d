"""Resolve a target string (an ssh_config alias or ``user@host[:port]``) like OpenSSH does.

A host name is taken as written: OpenSSH expands ``%`` tokens in ssh_config's values
(``HostName %h.lan``, ``ProxyCommand nc %h %p``), in one pass, never in what a token
stood for. paramiko replaces one token after another in the growing string, so a host
named ``a%rb`` had its ``%r`` expanded once ``%h`` had put it in: :class:`SSHConfig`
expands in one pass.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko
from paramiko.config import LazyFqdn

from edgeship.core.errors import ConfigError
from edgeship.core.hostnames import target_problem

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "DEFAULT_SSH_CONFIG",
    "HostSpec",
    "SSHConfig",
    "jump_chain",
    "jump_host",
    "load_ssh_config",
    "resolve_host",
]

DEFAULT_SSH_CONFIG = Path("~/.ssh/config")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
_TOKEN = re.compile(r"%.|~")  # what paramiko's tokenizer replaces, one at a time
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


class SSHConfig(paramiko.SSHConfig):
    """paramiko's ssh_config, its ``%`` tokens expanded in one pass as OpenSSH does
    (``%%`` is a ``%``): what a token stands for, a host name above all, is never
    expanded again. The tokens and what they stand for are paramiko's."""

    def _tokenize(self, config: dict[str, Any], target_hostname: str, key: str, value: str) -> str:
        allowed = self._allowed_tokens(key)
        if not allowed or (key == "hostname" and value == target_hostname):
            return value  # paramiko puts the name given in when there is no HostName
        values = _token_values(config, target_hostname, key)

        def one(token: re.Match[str]) -> str:
            if token[0] == "%%":
                return "%"
            return values[token[0]]() if token[0] in allowed and token[0] in values else token[0]

        return _TOKEN.sub(one, value)


def _token_values(
    config: dict[str, Any], target_hostname: str, key: str
) -> dict[str, Callable[[], str]]:
    """What each ssh_config token stands for when ``key`` of ``target_hostname``'s entry
    is expanded (paramiko's table; each computed only when used)."""
    configured = target_hostname if key == "hostname" else config.get("hostname", target_hostname)
    port = str(config.get("port", 22))
    user = getpass.getuser()
    remote_user = str(config.get("user", user))
    local = socket.gethostname().split(".")[0]
    home = os.path.expanduser("~")
    mixed = local + target_hostname + repr(config.get("port", 22)) + remote_user
    return {
        "%C": lambda: hashlib.sha1(mixed.encode()).hexdigest(),
        "%d": lambda: home,
        "%h": lambda: configured,
        "%L": lambda: local,
        "%l": lambda: str(LazyFqdn(config, local)),
        "%n": lambda: target_hostname,
        "%p": lambda: port,
        "%r": lambda: remote_user,
        "%u": lambda: user,
        "~": lambda: home,
    }


def load_ssh_config(path: Path | None) -> SSHConfig:
    """The user's ssh_config (``path`` or ~/.ssh/config); empty when there is none."""
    path = (path or DEFAULT_SSH_CONFIG).expanduser()
    if not path.exists():
        if path != DEFAULT_SSH_CONFIG.expanduser():
            raise ConfigError(f"{path}: no such ssh config file")
        return SSHConfig()
    try:
        return SSHConfig.from_path(str(path))
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
