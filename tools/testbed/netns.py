"""Network namespaces and veth links: one private /30 per device.

Each device lives in its own network namespace and is reachable from the root
namespace only over a veth pair carrying a /30 inside 10.213.0.0/16. The
namespace has no default route, so a device can talk to the host and nothing
else. Subnets are allocated under a machine-wide file lock so that two
testbeds (different prefixes, possibly different processes) never pick the
same one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ._proc import TestbedError, run

SUPERNET = ipaddress.ip_network("10.213.0.0/16")
LOCK_PATH = Path("/run/lock/edgeship-testbed.lock")


@dataclass(frozen=True)
class Link:
    """Names and addresses of one device's network plumbing."""

    namespace: str
    host_veth: str
    device_veth: str
    host_address: str
    device_address: str


@contextmanager
def machine_lock(path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold an exclusive machine-wide lock (subnet allocation, netns creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def used_subnets() -> set[ipaddress.IPv4Network]:
    """Return the /24s of SUPERNET with any address in the root namespace."""
    out = run(["ip", "-j", "-4", "addr", "show"]).stdout
    used: set[ipaddress.IPv4Network] = set()
    for iface in json.loads(out or "[]"):
        for info in iface.get("addr_info", []):
            addr = ipaddress.ip_address(info["local"])
            if addr in SUPERNET:
                used.add(ipaddress.ip_network(f"{addr}/24", strict=False))
    return used


def allocate_subnets(count: int) -> list[ipaddress.IPv4Network]:
    """Pick ``count`` free /30s (call under :func:`machine_lock`).

    Each device takes the first /30 of an otherwise unused /24, so addresses
    read as 10.213.N.1 (host) / 10.213.N.2 (device); 256 devices machine-wide.
    """
    used = used_subnets()
    free = (net for net in SUPERNET.subnets(new_prefix=24) if net not in used)
    picked = [next(net.subnets(new_prefix=30)) for net in itertools.islice(free, count)]
    if len(picked) < count:
        raise TestbedError(f"no free /24 left in {SUPERNET} for {count} devices")
    return picked


def namespaces() -> list[str]:
    """Names of all existing network namespaces."""
    out = run(["ip", "-j", "netns", "list"]).stdout
    return [entry["name"] for entry in json.loads(out or "[]")]


def links() -> list[str]:
    """Names of all interfaces in the root namespace."""
    out = run(["ip", "-j", "link", "show"]).stdout
    return [entry["ifname"] for entry in json.loads(out or "[]")]


def create_link(
    namespace: str, host_veth: str, device_veth: str, subnet: ipaddress.IPv4Network
) -> Link:
    """Create the namespace, the veth pair and the /30 between them."""
    hosts = list(subnet.hosts())
    link = Link(namespace, host_veth, device_veth, str(hosts[0]), str(hosts[1]))
    run(["ip", "netns", "add", namespace])
    run(
        [
            "ip",
            "link",
            "add",
            host_veth,
            "type",
            "veth",
            "peer",
            "name",
            device_veth,
            "netns",
            namespace,
        ]
    )
    run(["ip", "addr", "add", f"{link.host_address}/30", "dev", host_veth])
    run(["ip", "link", "set", host_veth, "up"])
    ns = ["ip", "-n", namespace]
    run([*ns, "link", "set", "lo", "up"])
    run([*ns, "addr", "add", f"{link.device_address}/30", "dev", device_veth])
    run([*ns, "link", "set", device_veth, "up"])
    return link


def delete_namespace(namespace: str) -> None:
    """Delete a namespace (its veth end goes with it, taking the peer along)."""
    if namespace in namespaces():
        run(["ip", "netns", "del", namespace])


def delete_link(name: str) -> None:
    """Delete a root-namespace interface if it still exists."""
    if name in links():
        run(["ip", "link", "del", name])


def set_blackhole(namespace: str, host_address: str, on: bool) -> None:
    """Silently drop everything the device sends back to the host.

    A blackhole route inside the device namespace makes the device's SYN-ACKs
    (and every other reply) vanish without an ICMP error, so the host sees a
    connect *timeout*, not a refusal. netem would be the textbook tool, but
    minimal VM kernels often ship without sch_netem; a route works everywhere.
    """
    route = ["ip", "-n", namespace, "route"]
    if on:
        run([*route, "replace", "blackhole", f"{host_address}/32"])
        return
    shown = run([*route, "show", "type", "blackhole"]).stdout
    if re.search(rf"\b{re.escape(host_address)}\b", shown):
        run([*route, "del", "blackhole", f"{host_address}/32"])


def namespace_pids(namespace: str) -> list[int]:
    """Pids of all processes living in ``namespace``."""
    if namespace not in namespaces():
        return []
    out = run(["ip", "netns", "pids", namespace], check=False).stdout
    return [int(tok) for tok in out.split() if tok.isdigit()]
