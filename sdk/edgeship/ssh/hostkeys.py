"""Host-key checking: refuse unknown and changed keys unless the user opted in.

Like OpenSSH's ``StrictHostKeyChecking``: ``yes`` (default) refuses an unknown key,
``accept-new`` records it in the first known_hosts file; a *changed* key is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import paramiko

from ..errors import HostKeyError


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """The default: an unknown host key is an error that names host and fingerprint."""

    def __init__(self, label: str) -> None:
        self.label = label

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        fp = fingerprint(key)
        raise HostKeyError(
            f"{self.label}: unknown host key {key.get_name()} {fp}; verify it, then add it to "
            "known_hosts or pass --accept-new-host-keys",
            target=self.label,
            fingerprint=fp,
        )


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a host seen for the first time and append its key to ``known_hosts``."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # paramiko passes the known_hosts form already: "host" or "[host]:port"
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def changed_key_error(label: str, exc: paramiko.BadHostKeyException) -> HostKeyError:
    return HostKeyError(
        f"{label}: host key CHANGED: known_hosts has {fingerprint(exc.expected_key)}, the host "
        f"offered {fingerprint(exc.key)}; if the device was reinstalled, remove its old line "
        "from known_hosts (ssh-keygen -R)",
        target=label,
        fingerprint=fingerprint(exc.key),
    )
