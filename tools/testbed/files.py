"""Client-side files a testbed writes: ssh_config, known_hosts, edgeship.toml.

These are the same artefacts a user would hand-write for real boards, so an
end-to-end test drives edgeship exactly as a user would: through an ssh_config
alias, strict host key checking and a targets file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class DeviceLike(Protocol):
    """The fields of a Device these writers need (avoids an import cycle)."""

    name: str
    address: str
    port: int
    user: str
    deploy_root: str


def ssh_config(devices: Sequence[DeviceLike], identity: Path, known_hosts: Path) -> str:
    """One ``Host`` block per device, pinned to the testbed key and known_hosts."""
    blocks = []
    for dev in devices:
        blocks.append(
            "\n".join(
                [
                    f"Host {dev.name}",
                    f"    HostName {dev.address}",
                    f"    Port {dev.port}",
                    f"    User {dev.user}",
                    f"    IdentityFile {identity}",
                    "    IdentitiesOnly yes",
                    f"    UserKnownHostsFile {known_hosts}",
                    "    GlobalKnownHostsFile /dev/null",
                    "    StrictHostKeyChecking yes",
                    "    BatchMode yes",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def known_hosts(entries: Sequence[tuple[DeviceLike, str]]) -> str:
    """known_hosts lines: the host key under both the alias and the address.

    For a non-default port OpenSSH would expect ``[addr]:port``; keep both forms
    correct so paramiko and OpenSSH agree whichever name they look up.
    """
    lines = []
    for dev, public_key in entries:
        key = " ".join(public_key.split()[:2])
        names = (
            [dev.name, dev.address]
            if dev.port == 22
            else [f"[{dev.name}]:{dev.port}", f"[{dev.address}]:{dev.port}"]
        )
        lines.append(f"{','.join(names)} {key}")
    return "\n".join(lines) + "\n"


def targets_toml(devices: Sequence[DeviceLike], python: str | None, group: str = "testbed") -> str:
    """edgeship targets file: one ``[devices.NAME]`` table each, plus a group. ``python``:
    the device Python every device names; None names none (edgeship then uses what
    ``setup`` recorded, else ``python3``), as for a board nothing was set up on yet."""
    parts = []
    for dev in devices:
        lines = [f"[devices.{dev.name}]", f"host = {json.dumps(dev.name)}"]
        if python is not None:
            lines.append(f"python = {json.dumps(python)}")
        lines += [f"deploy_root = {json.dumps(dev.deploy_root)}", f"labels = [{json.dumps(group)}]"]
        parts.append("\n".join(lines))
    members = ", ".join(json.dumps(dev.name) for dev in devices)
    parts.append(f"[groups]\n{group} = [{members}]")
    return "\n".join(parts) + "\n"
