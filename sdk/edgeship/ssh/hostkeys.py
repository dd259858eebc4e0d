"""Host-key checking: refuse unknown, changed and revoked keys unless the user opted in.

Like OpenSSH's ``StrictHostKeyChecking``: ``yes`` (default) refuses an unknown key,
``accept-new`` records it in the first known_hosts file; a *changed* key is always refused,
and so is a key that a ``@revoked`` line names, whatever else the files say. As OpenSSH,
a host is accepted when ANY of its known keys matches: a stale line beside the right
one (two keys of one type) changes nothing, and a key is *changed* only when none of the
lines for the host names it. paramiko checks one key per type, so no key is handed to
it: the policy (:class:`RefuseUnknown`, :class:`AcceptNew`) sees every host key and
decides, and the connection asks for the host's known key types first
(:meth:`KnownHosts.algorithms`), as OpenSSH does.

known_hosts files are read here, line by line, for the one host being connected to
(paramiko's loader fails on marker lines and knows no wildcards): host patterns with
``*``/``?``/``!`` and hashed names match as in OpenSSH; ``@cert-authority`` lines are
skipped (edgeship does not check host certificates, so such a host needs its own key
line, which the unknown-key error says); unreadable lines are skipped as OpenSSH does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from edgeship.core.errors import ConfigError, HostKeyError

__all__ = [
    "AcceptNew",
    "KnownHosts",
    "RefuseUnknown",
    "changed_key_error",
    "fingerprint",
    "host_matches",
    "known_hosts_name",
    "read_known_hosts",
]

_REVOKED = "@revoked"
_CERT_AUTHORITY = "@cert-authority"
_RSA = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")  # what an ssh-rsa key signs with


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """The name known_hosts gives a host: ``host`` on port 22, else ``[host]:port``."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


@dataclass(frozen=True)
class KnownHosts:
    """What known_hosts files say about one host, ``name`` as :func:`known_hosts_name`.

    ``keys``: the trusted keys, in file order, revoked ones left out; ``revoked``: keys a
    ``@revoked`` line names for this host, each with its ``file:line``; ``authorities``:
    the ``file:line`` of ``@cert-authority`` lines that cover this host.
    """

    name: str
    keys: tuple[paramiko.PKey, ...] = ()
    revoked: tuple[tuple[paramiko.PKey, str], ...] = ()
    authorities: tuple[str, ...] = ()

    def algorithms(self) -> list[str]:
        """The host key algorithms of ``keys``, in file order (an RSA key: its SHA-2
        signatures first), for the connection to ask for first."""
        names: list[str] = []
        for key in self.keys:
            for name in _RSA if key.get_name() == "ssh-rsa" else (key.get_name(),):
                if name not in names:
                    names.append(name)
        return names

    def check(self, label: str, key: paramiko.PKey) -> bool:
        """Whether ``key`` is one of ``keys`` (True) or the host is unknown (False);
        a :class:`HostKeyError` when a ``@revoked`` line names it, or when the host is
        known with other keys only (changed)."""
        revoked = self.revoked_error(label, key)
        if revoked is not None:
            raise revoked
        if any(key == known for known in self.keys):
            return True
        same_type = [k for k in self.keys if k.get_name() == key.get_name()]
        if same_type or self.keys:
            raise changed_key_error(label, (same_type or list(self.keys))[0], key)
        return False

    def revoked_error(self, label: str, key: paramiko.PKey) -> HostKeyError | None:
        """The error for ``key`` if a ``@revoked`` line names it, else None."""
        where = next((at for k, at in self.revoked if k == key), None)
        if where is None:
            return None
        fp = fingerprint(key)
        return HostKeyError(
            f"{label}: host key {key.get_name()} {fp} is REVOKED ({_REVOKED} in {where}); "
            "refusing to connect: the device's key may be compromised",
            target=label,
            fingerprint=fp,
        )


def read_known_hosts(paths: Sequence[Path], name: str) -> KnownHosts:
    """The lines of ``paths`` (missing files are skipped) that concern host ``name``.

    Raises:
        ConfigError: a known_hosts file exists but cannot be read.
    """
    keys: list[paramiko.PKey] = []
    revoked: list[tuple[paramiko.PKey, str]] = []
    authorities: list[str] = []
    for path in paths:
        for lineno, line in enumerate(_lines(path), 1):
            entry = _entry(line)
            if entry is None or not host_matches(name, entry[1]):
                continue
            marker, _, key_type, blob = entry
            if marker == _CERT_AUTHORITY:
                authorities.append(f"{path}:{lineno}")
                continue
            key = _key(key_type, blob)
            if key is not None and marker == _REVOKED:
                revoked.append((key, f"{path}:{lineno}"))
            elif key is not None and marker is None:
                keys.append(key)
    trusted = tuple(k for k in keys if all(k != r for r, _ in revoked))
    return KnownHosts(name, trusted, tuple(revoked), tuple(authorities))


def _lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read known_hosts ({exc.strerror or exc})") from None
    return data.decode("utf-8", "replace").splitlines()


def _entry(line: str) -> tuple[str | None, str, str, str] | None:
    """``(marker, host patterns, key type, base64 key)`` of a line; None for a comment, a
    blank or malformed line or an unknown marker."""
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = fields.pop(0) if fields[0].startswith("@") else None
    if marker not in (None, _REVOKED, _CERT_AUTHORITY) or len(fields) < 3:
        return None
    return marker, fields[0], fields[1], fields[2]


def _key(key_type: str, blob: str) -> paramiko.PKey | None:
    """The public key of a line, or None for a key paramiko cannot read."""
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except Exception:  # paramiko raises assorted errors for unknown types and bad blobs
        return None


def host_matches(name: str, patterns: str) -> bool:
    """Whether ``name`` matches a known_hosts pattern list (``a,*.lan,!b.lan,|1|salt|hash``)
    as OpenSSH matches it: a negated match wins over any other."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        if pattern.startswith("|1|"):
            hit = _hashed_match(name, pattern)
        else:
            hit = _glob(pattern.lower()).fullmatch(name.lower()) is not None
        if hit and negated:
            return False
        matched = matched or hit
    return matched


def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH's patterns: ``*`` any run, ``?`` any one character; nothing else special."""
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), re.DOTALL)


def _hashed_match(name: str, hashed: str) -> bool:
    """``|1|base64(salt)|base64(HMAC-SHA1(salt, name))``, as ``ssh-keygen -H`` writes it."""
    try:
        _, _, salt, digest = hashed.split("|")
        want = base64.b64decode(digest, validate=True)
        key = base64.b64decode(salt, validate=True)
    except (ValueError, binascii.Error):
        return False
    got = hmac.new(key, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """The default: a known key is accepted; an unknown host key is an error that names
    host and fingerprint; a revoked or changed one an error that says so."""

    def __init__(self, label: str, known: KnownHosts | None = None) -> None:
        self.label = label
        self.known = known or KnownHosts("")

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.known.check(self.label, key):
            return
        fp = fingerprint(key)
        authority = (
            f"; known_hosts trusts it through {_CERT_AUTHORITY} "
            f"({', '.join(self.known.authorities)}), and edgeship does not check host "
            "certificates: add the host key itself"
            if self.known.authorities
            else ""
        )
        raise HostKeyError(
            f"{self.label}: unknown host key {key.get_name()} {fp}; verify it, then add it to "
            f"known_hosts or pass --accept-new-host-keys{authority}",
            target=self.label,
            fingerprint=fp,
        )


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a host seen for the first time and append its key to ``known_hosts``; a
    known key is accepted; never a revoked or changed key."""

    def __init__(self, known_hosts: Path, known: KnownHosts | None = None, label: str = "") -> None:
        self.known_hosts = known_hosts
        self.known = known or KnownHosts("")
        self.label = label

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.known.check(self.label or hostname, key):
            return
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # paramiko passes the known_hosts form already: "host" or "[host]:port"
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def changed_key_error(label: str, known: paramiko.PKey, offered: paramiko.PKey) -> HostKeyError:
    return HostKeyError(
        f"{label}: host key CHANGED: known_hosts has {fingerprint(known)}, the host "
        f"offered {fingerprint(offered)}; if the device was reinstalled, remove its old line "
        "from known_hosts (ssh-keygen -R)",
        target=label,
        fingerprint=fingerprint(offered),
    )
