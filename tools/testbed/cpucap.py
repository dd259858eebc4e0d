"""CPU caps: give each device a fixed share of a core, as a real board has its own CPUs.

All devices of a testbed run on this machine's cores. Without a cap, 8 devices profiling
at once compete for the same 2 cores and each runs 4x slower than one device alone, which
says nothing about the host fanning out to 8 boards. A CFS quota (cgroup ``cpu``
controller) gives every device the same budget whether it runs alone or beside others,
as long as the caps add up to less than the machine has.

One cgroup per device under ``edgeship-testbed/``; both the cgroup v1 ``cpu`` hierarchy
and the unified v2 hierarchy are supported. The device's sshd is moved into it at start,
so every session, and every process a session starts, inherits the cap.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ._proc import TestbedError

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "edgeship-testbed"
PERIOD_US = 100_000


def _hierarchy() -> tuple[Path, bool]:
    """(mount point of the cpu controller, whether it is cgroup v2)."""
    v1 = CGROUP_ROOT / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1, False
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP_ROOT, True
    raise TestbedError(
        "cannot cap device CPU: no cgroup cpu controller under /sys/fs/cgroup "
        "(neither v1 cpu/cpu.cfs_quota_us nor v2 cgroup.controllers with 'cpu')"
    )


def group_path(name: str) -> Path:
    """The cgroup directory of device ``name`` (whether or not it exists)."""
    base, _ = _hierarchy()
    return base / PARENT / name


def create(name: str, cores: float) -> Path:
    """A cgroup for device ``name`` limited to ``cores`` CPUs (0.25 = a quarter core;
    :class:`~tools.testbed.Testbed` has checked that it is positive)."""
    base, v2 = _hierarchy()
    group = base / PARENT / name
    quota = max(1000, round(cores * PERIOD_US))  # the kernel's minimum quota is 1 ms
    try:
        if v2:
            _enable_cpu(base)
            (base / PARENT).mkdir(exist_ok=True)
            _enable_cpu(base / PARENT)
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}\n")
        else:
            group.mkdir(parents=True, exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    except OSError as exc:
        raise TestbedError(f"cannot create CPU cap cgroup {group}: {exc}") from exc
    return group


def _enable_cpu(group: Path) -> None:
    """Let ``group``'s children use the cpu controller (v2 delegates it explicitly)."""
    control = group / "cgroup.subtree_control"
    if "cpu" not in control.read_text().split():
        control.write_text("+cpu\n")


def join(group: Path, pid: int) -> None:
    """Move process ``pid`` into ``group``; children it starts later stay there."""
    try:
        (group / "cgroup.procs").write_text(f"{pid}\n")
    except OSError as exc:
        raise TestbedError(f"cannot move pid {pid} into {group}: {exc}") from exc


def throttled_us(group: Path) -> int:
    """Total time the group's tasks were held back by the cap, in microseconds."""
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    if "throttled_usec" in stat:  # v2
        return int(stat["throttled_usec"])
    return int(stat.get("throttled_time", 0)) // 1000  # v1 counts nanoseconds


def groups(pattern: str) -> list[Path]:
    """Existing device cgroups whose name fully matches ``pattern``."""
    try:
        parent = group_path("x").parent
    except TestbedError:
        return []
    if not parent.is_dir():
        return []
    name_re = re.compile(pattern)
    return sorted(p for p in parent.iterdir() if p.is_dir() and name_re.fullmatch(p.name))


def remove(group: Path) -> None:
    """Delete an (empty) device cgroup, and the shared parent once no testbed uses it;
    the group's processes must be gone already."""
    try:
        group.rmdir()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TestbedError(f"cannot remove CPU cap cgroup {group}: {exc}") from exc
    with contextlib.suppress(OSError):  # another testbed's devices are still in it
        group.parent.rmdir()
