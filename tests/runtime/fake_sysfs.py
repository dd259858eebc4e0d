"""A fake ``/sys`` tree for the runtime's guards and power sensors, and a thread that
advances its counters (what a kernel does), so tests run on any machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgeship_runtime.sysfs import SYSFS_ROOT_ENV


class FakeSys:
    """Files under ``root/sys``; point the runtime at it with :meth:`use`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, value: object) -> Path:
        path = self.root / "sys" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{value}\n")
        tmp.replace(path)  # whole values only, as sysfs reads are
        return path

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(SYSFS_ROOT_ENV, str(self.root))

    def cpu(self, n: int, governor: str = "performance", cur_khz: int = 1_800_000) -> None:
        base = f"devices/system/cpu/cpu{n}/cpufreq"
        self.write(f"{base}/scaling_governor", governor)
        self.write(f"{base}/scaling_cur_freq", cur_khz)
        self.write(f"{base}/scaling_max_freq", 1_800_000)
        self.write(f"{base}/cpuinfo_max_freq", 1_800_000)

    def rapl(self, zone: str = "intel-rapl:0", name: str = "package-0", wrap: int = 10**9) -> str:
        self.write(f"class/powercap/{zone}/name", name)
        self.write(f"class/powercap/{zone}/max_energy_range_uj", wrap)
        self.write(f"class/powercap/{zone}/energy_uj", 0)
        return f"class/powercap/{zone}/energy_uj"

    @contextmanager
    def advancing(
        self, relative: str, uj_per_s: float, wrap: int | None = None, start: int = 0
    ) -> Iterator[None]:
        """A thread writing ``start + uj_per_s * elapsed`` (modulo ``wrap``) every ms."""
        stop = threading.Event()
        self.write(relative, start)
        t0 = time.perf_counter()

        def advance() -> None:
            while not stop.wait(0.001):
                value = int(start + uj_per_s * (time.perf_counter() - t0))
                self.write(relative, value % wrap if wrap else value)

        thread = threading.Thread(target=advance, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
