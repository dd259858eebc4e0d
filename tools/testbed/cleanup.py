"""Tear down everything a testbed with a given prefix may have left behind.

Teardown works from what exists on the machine, not from what this process
remembers: the same routine serves ``down()``, the rollback of a half-done
``up()``, the CLI's ``down`` in a later process, and the purge of leftovers
from a crashed run. Only names fully matching the prefix's patterns (and, for
accounts, carrying the testbed GECOS marker) are touched.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from . import cpucap, emulated, netns, users
from ._proc import TestbedError, cmdlines, kill_all, pids_of_uid, run


def device_pattern(prefix: str) -> str:
    """Regex matching device/namespace/user names of ``prefix``."""
    return rf"{re.escape(prefix)}-dev\d+"


def veth_pattern(prefix: str) -> str:
    """Regex matching both veth ends of ``prefix``."""
    return rf"{re.escape(prefix)}-[hd]\d+"


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below ``base``, deepest first."""
    found: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == str(base) or point.startswith(f"{base}/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _unescape(field: str) -> str:
    """Undo the octal escaping of /proc/self/mountinfo (``\\040`` = space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def unmount(point: str) -> None:
    """Unmount ``point``; fall back to a lazy unmount if it is busy."""
    if run(["umount", point], check=False).returncode != 0:
        run(["umount", "--lazy", point])


def purge(prefix: str) -> None:
    """Remove processes, mounts, links, namespaces, CPU caps, users and homes of ``prefix``.

    Every step is attempted even if an earlier one failed; the failures are
    reported together at the end.
    """
    dev_re = re.compile(device_pattern(prefix))
    errors: list[str] = []

    def attempt(step: Callable[[], None]) -> None:
        try:
            step()
        except (TestbedError, OSError) as exc:
            errors.append(str(exc))

    spaces = [ns for ns in netns.namespaces() if dev_re.fullmatch(ns)]
    accounts = users.testbed_users(device_pattern(prefix))
    homes = sorted({users.HOME_BASE / a.pw_name for a in accounts} | _stale_homes(dev_re))
    for ns in spaces:
        attempt(lambda ns=ns: kill_all(netns.namespace_pids(ns)))
    for account in accounts:
        attempt(lambda a=account: kill_all(pids_of_uid(a.pw_uid)))
    attempt(lambda: kill_all(sshd_pids(prefix)))
    attempt(lambda: kill_all(proxy_pids(prefix)))
    roots = _emulated_roots(dev_re)
    for base in [*roots, *homes]:
        for point in mounts_under(base):
            attempt(lambda p=point: unmount(p))
    veth_re = re.compile(veth_pattern(prefix))
    for link in netns.links():
        if veth_re.fullmatch(link.split("@")[0]):
            attempt(lambda name=link: netns.delete_link(name))
    for ns in spaces:
        attempt(lambda ns=ns: netns.delete_namespace(ns))
    for group in cpucap.groups(device_pattern(prefix)):
        attempt(lambda g=group: cpucap.remove(g))
    for account in accounts:
        attempt(lambda name=account.pw_name: users.delete_user(name))
    for home in homes:
        attempt(lambda h=home: shutil.rmtree(h) if h.exists() else None)
    for base in roots:
        attempt(lambda b=base: _remove_root(b))
    if errors:
        raise TestbedError(f"teardown of prefix {prefix!r} incomplete:\n" + "\n".join(errors))


def _stale_homes(dev_re: re.Pattern[str]) -> set[Path]:
    """Home directories left under HOME_BASE whose account is already gone."""
    if not users.HOME_BASE.is_dir():
        return set()
    return {p for p in users.HOME_BASE.iterdir() if p.is_dir() and dev_re.fullmatch(p.name)}


def _emulated_roots(dev_re: re.Pattern[str]) -> list[Path]:
    """The emulated boards' directories (see :mod:`.emulated`) of matching devices."""
    base = emulated.ROOTS_BASE
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if dev_re.fullmatch(p.name))


def _remove_root(base: Path) -> None:
    """Delete an emulated board's directory, never while anything is mounted in it: its
    root holds a bind of this machine's /dev and of the device's home."""
    mounted = mounts_under(base)
    if mounted:
        raise TestbedError(f"not removing {base}: still mounted there: {', '.join(mounted)}")
    shutil.rmtree(base)


def proxy_pids(prefix: str) -> list[int]:
    """The PyPI proxies (see :mod:`.proxy`) of ``prefix``'s emulated boards."""
    name_re = re.compile(rf"--name {device_pattern(prefix)}$")
    return [pid for pid, cmd in cmdlines().items() if "proxy.py" in cmd and name_re.search(cmd)]


def sshd_pids(prefix: str) -> list[int]:
    """sshd processes (listeners or per-connection) belonging to ``prefix``."""
    name_re = re.compile(rf"(^|[/ ]){device_pattern(prefix)}([/ @\]]|$)")
    return [pid for pid, cmd in cmdlines().items() if "sshd" in cmd and name_re.search(cmd)]


def leftovers(prefix: str) -> list[str]:
    """Describe anything of ``prefix`` still present (empty list = clean)."""
    dev_re = re.compile(device_pattern(prefix))
    veth_re = re.compile(veth_pattern(prefix))
    found = [f"netns {ns}" for ns in netns.namespaces() if dev_re.fullmatch(ns)]
    found += [f"link {ln}" for ln in netns.links() if veth_re.fullmatch(ln)]
    found += [f"user {a.pw_name}" for a in users.testbed_users(device_pattern(prefix))]
    found += [f"home {h}" for h in _stale_homes(dev_re)]
    found += [f"process {pid}" for pid in sshd_pids(prefix) + proxy_pids(prefix)]
    found += [f"emulated root {p}" for p in _emulated_roots(dev_re)]
    found += [f"cgroup {g}" for g in cpucap.groups(device_pattern(prefix))]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if re.search(rf"(^|[/ ]){device_pattern(prefix)}(/|\s|$)", line):
            found.append(f"mount {line.split()[4]}")
    return found
