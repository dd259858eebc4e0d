"""What the device is: read from /proc and /sys where they exist, never guessed.

``/sys`` is read under :func:`.sysfs.root` (``EDGESHIP_SYSFS_ROOT``), so tests can give a
fake tree; :mod:`.guards` reads the clock and throttling state around a timed window.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from collections.abc import Iterator, Sequence
from typing import Dict, Optional

from . import sysfs
from .errors import UsageError
from .report import Environment


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    """'model name' on x86, 'Model'/'Hardware' on ARM boards, else what platform says."""
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def total_memory_mb() -> float:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    try:
        import psutil

        return float(psutil.virtual_memory().total) / 2**20
    except ImportError:
        return 0.0


def os_name() -> str:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """Every thread of this process (the backend's pool too) pinned to ``cpus`` inside
    the block, and back where each was after it; nothing done for an empty ``cpus``.
    Threads started inside the block inherit the pinning of the thread that starts them."""
    if not cpus:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise UsageError("this device cannot pin a process to CPUs (no sched_setaffinity)")
    allowed = set(os.sched_getaffinity(0))
    wanted = set(cpus)
    if not wanted <= allowed:
        raise UsageError(
            f"CPUs {sorted(wanted - allowed)} are not usable here (usable: "
            f"{','.join(map(str, sorted(allowed)))})"
        )
    was: Dict[int, set] = {}
    for tid in _threads():
        try:
            was[tid] = set(os.sched_getaffinity(tid))
            os.sched_setaffinity(tid, wanted)
        except OSError:  # a thread that ended meanwhile
            was.pop(tid, None)
    try:
        yield
    finally:
        for tid, mask in was.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)


def _threads() -> list:
    """This process's thread ids (Linux), else 0: the calling thread."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def thermal_zones() -> Dict[str, float]:
    """Every readable thermal zone, named by its type, in °C."""
    zones: Dict[str, float] = {}
    for zone in sysfs.sys_glob("class", "thermal", "thermal_zone*"):
        raw = sysfs.read_int(os.path.join(zone, "temp"))
        if raw is None:
            continue
        name = sysfs.read_text(os.path.join(zone, "type")) or os.path.basename(zone)
        if name in zones:  # two zones of one type (e.g. two packages): keep both
            name = f"{name}/{os.path.basename(zone)}"
        zones[name] = raw / 1000.0
    return zones


def cpu_freq_mhz() -> Optional[float]:
    raw = sysfs.read_int(
        sysfs.sys_path("devices", "system", "cpu", "cpu0", "cpufreq", "scaling_cur_freq")
    )
    return raw / 1000.0 if raw is not None else None


def collect() -> Environment:
    zones = thermal_zones()
    return Environment(
        hostname=socket.gethostname(),
        arch=platform.machine(),
        cpu_model=cpu_model(),
        logical_cores=os.cpu_count() or 1,
        usable_cores=usable_cores(),
        total_memory_mb=round(total_memory_mb(), 1),
        os=os_name(),
        python=platform.python_version(),
        board=_read("/proc/device-tree/model"),
        cpu_governor=sysfs.read_text(
            sysfs.sys_path("devices", "system", "cpu", "cpu0", "cpufreq", "scaling_governor")
        ),
        cpu_freq_mhz=cpu_freq_mhz(),
        temperature_c=max(zones.values()) if zones else None,
        thermal_zones=zones,
    )
