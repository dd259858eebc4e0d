"""Power sensors read on the device during a timed window: energy per inference, measured.

Sensors are found under ``/sys`` (see :mod:`.sysfs` for pointing the runtime at another
tree) and come in two kinds:

- ``counter``: an energy counter read at the window's ends (and every second between, so a
  wrap is never missed): Linux powercap/RAPL ``energy_uj`` (µJ, wrapping at
  ``max_energy_range_uj``) per top-level zone, hwmon ``energy*_input`` (µJ);
- ``sampled``: a power reading sampled every :data:`SAMPLE_INTERVAL_S` from a thread, its
  time-weighted mean (trapezoids) times the window: hwmon ``power*_input`` (µW; INA219
  on Pi HATs), and INA3221 rails (Jetson, hwmon ``ina3221``) as ``in*_input`` mV ×
  ``curr*_input`` mA.

Each covers what its hardware covers (a CPU package, a board rail), never only this
process. No sensor: the report says ``no power sensor``; nothing is estimated.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from . import sysfs
from .report import EnergyReport, SensorReading

SAMPLE_INTERVAL_S = 0.02
"""How often a sampled (power) sensor is read during the window."""
COUNTER_POLL_S = 1.0
"""How often counters are read between the ends, to catch a wrap-around."""
COARSE_WINDOW_S = 0.1
"""Below this a window is too short for counters that update every millisecond or so."""
NO_SENSOR = "no power sensor"


@dataclass(frozen=True)
class Sensor:
    """One sensor: ``read`` gives µJ (a counter) or µW (sampled)."""

    name: str
    kind: str
    source: str
    read: Callable[[], int]
    wrap_uj: Optional[int] = None


def _reader(*paths: str) -> Callable[[], int]:
    """Reads one integer file, or the product of two (mV × mA = µW)."""

    def read() -> int:
        value = 1
        for path in paths:
            with open(path, "rb") as f:
                value *= int(f.read().strip())
        return value

    return read


def discover() -> Tuple[List[Sensor], List[str]]:
    """(readable sensors, why others were left out)."""
    found = _powercap() + _hwmon()
    sensors, problems = [], []
    for sensor in found:
        try:
            sensor.read()
        except (OSError, ValueError) as exc:
            why = "permission denied" if isinstance(exc, PermissionError) else str(exc)
            problems.append(f"{sensor.name} not readable ({why})")
            continue
        sensors.append(sensor)
    return sensors, problems


def _powercap() -> List[Sensor]:
    sensors = []
    for zone in sysfs.sys_glob("class", "powercap", "*"):
        base = os.path.basename(zone)
        if base.count(":") != 1 or not os.path.exists(os.path.join(zone, "energy_uj")):
            continue  # the control type itself, or a subzone (its parent counts it already)
        name = sysfs.read_text(os.path.join(zone, "name")) or base
        family = base.split(":")[0].replace("intel-", "")  # intel-rapl, intel-rapl-mmio
        sensors.append(
            Sensor(
                name=f"{family}:{name}",
                kind="counter",
                source=os.path.join(zone, "energy_uj"),
                read=_reader(os.path.join(zone, "energy_uj")),
                wrap_uj=sysfs.read_int(os.path.join(zone, "max_energy_range_uj")),
            )
        )
    return sensors


def _hwmon() -> List[Sensor]:
    sensors = []
    for device in sysfs.sys_glob("class", "hwmon", "hwmon*"):
        chip = sysfs.read_text(os.path.join(device, "name")) or os.path.basename(device)
        for kind, prefix in (("counter", "energy"), ("sampled", "power")):
            for path in sysfs.glob_sorted(os.path.join(device, f"{prefix}*_input")):
                channel = os.path.basename(path)[: -len("_input")]
                label = sysfs.read_text(os.path.join(device, f"{channel}_label")) or channel
                sensors.append(Sensor(f"hwmon:{chip}:{label}", kind, path, _reader(path)))
        if chip.startswith("ina3221"):
            sensors += _ina3221(device, chip)
    return sensors


def _ina3221(device: str, chip: str) -> List[Sensor]:
    """A Jetson's rails: voltage (mV) × current (mA) per labelled channel, in µW."""
    sensors = []
    for volts in sysfs.glob_sorted(os.path.join(device, "in*_input")):
        channel = os.path.basename(volts)[2 : -len("_input")]
        amps = os.path.join(device, f"curr{channel}_input")
        label = sysfs.read_text(os.path.join(device, f"in{channel}_label"))
        if label and os.path.exists(amps) and "sum" not in label.lower():
            sensors.append(
                Sensor(
                    f"hwmon:{chip}:{label}", "sampled", f"{volts} × {amps}", _reader(volts, amps)
                )
            )
    return sensors


class EnergyMeter:
    """Reads every sensor over one window: :meth:`start` at its start, :meth:`stop` at
    its end. A thread polls between (sampled sensors every :data:`SAMPLE_INTERVAL_S`,
    counters every :data:`COUNTER_POLL_S`); without sensors it does nothing."""

    def __init__(self, sensors: List[Sensor], problems: List[str]) -> None:
        self.sensors = sensors
        self.problems = problems
        self._counted: Dict[str, int] = {}
        self._last: Dict[str, int] = {}
        self._samples: Dict[str, List[Tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._t0 = self._t1 = 0.0

    @classmethod
    def discover(cls) -> EnergyMeter:
        return cls(*discover())

    def start(self) -> None:
        self._stop.clear()
        self._poll(counters=True, sampled=True)
        self._t0 = time.perf_counter()
        if self.sensors:
            self._thread = threading.Thread(target=self._loop, name="edgeship-power", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._t1 = time.perf_counter()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._poll(counters=True, sampled=True)

    def _loop(self) -> None:
        sampled = any(s.kind == "sampled" for s in self.sensors)
        interval = SAMPLE_INTERVAL_S if sampled else COUNTER_POLL_S
        next_counter = time.perf_counter() + COUNTER_POLL_S
        while not self._stop.wait(interval):
            due = time.perf_counter() >= next_counter
            if due:
                next_counter += COUNTER_POLL_S
            self._poll(counters=due, sampled=True)

    def _poll(self, counters: bool, sampled: bool) -> None:
        with self._lock:
            for sensor in self.sensors:
                if (sensor.kind == "counter" and not counters) or (
                    sensor.kind == "sampled" and not sampled
                ):
                    continue
                try:
                    value = sensor.read()
                except (OSError, ValueError):
                    continue  # one failed read: the next one covers the interval
                if sensor.kind == "sampled":
                    self._samples.setdefault(sensor.name, []).append((time.perf_counter(), value))
                    continue
                last = self._last.get(sensor.name)
                if last is not None:
                    self._counted[sensor.name] = self._counted.get(sensor.name, 0) + _delta(
                        last, value, sensor.wrap_uj
                    )
                self._last[sensor.name] = value

    def report(self, inferences: int) -> EnergyReport:
        """The window's energy per sensor (call after :meth:`stop`)."""
        window = max(self._t1 - self._t0, 1e-9)
        readings = []
        for sensor in self.sensors:
            samples = None
            if sensor.kind == "counter":
                energy_uj = float(self._counted.get(sensor.name, 0))
            else:  # the mean power over the samples, over the window
                points = self._samples.get(sensor.name, [])
                samples = len(points)
                energy_uj = _mean_power_uw(points) * window
            readings.append(
                SensorReading(
                    sensor=sensor.name,
                    kind=sensor.kind,
                    source=sensor.source,
                    energy_mj=energy_uj / 1000.0,
                    average_w=energy_uj / 1e6 / window,
                    mj_per_inference=energy_uj / 1000.0 / max(inferences, 1),
                    samples=samples,
                    interval_s=SAMPLE_INTERVAL_S if sensor.kind == "sampled" else None,
                )
            )
        return EnergyReport(
            window_s=window,
            inferences=inferences,
            sensors=readings,
            note=self._note(window),
        )

    def _note(self, window: float) -> Optional[str]:
        notes = [] if self.sensors else [NO_SENSOR]
        notes += self.problems
        if self.sensors and window < COARSE_WINDOW_S:
            notes.append(
                f"the window lasted {1000 * window:.0f} ms, under {1000 * COARSE_WINDOW_S:.0f} "
                "ms: the figures are coarse (time more runs, or --min-seconds)"
            )
        return "; ".join(notes) or None


def _delta(before: int, after: int, wrap_uj: Optional[int]) -> int:
    """A counter's increase, across one wrap-around at ``wrap_uj`` (RAPL's
    ``max_energy_range_uj``); a counter that went back without a known range counts 0."""
    if after >= before:
        return after - before
    return after + wrap_uj - before if wrap_uj else 0


def _mean_power_uw(points: List[Tuple[float, int]]) -> float:
    """The time-weighted mean of (seconds, µW) points (trapezoids); one point: itself."""
    if len(points) < 2:
        return float(points[0][1]) if points else 0.0
    span = points[-1][0] - points[0][0]
    if span <= 0:
        return float(sum(p for _, p in points)) / len(points)
    total = sum((p0 + p1) / 2.0 * (t1 - t0) for (t0, p0), (t1, p1) in zip(points, points[1:]))
    return total / span
