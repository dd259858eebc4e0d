"""Run one operation on many targets, at most ``forks`` at a time; the rest queue.

Like fabric's ``GroupResult``: every device gets a result or an error, and the caller
decides what a partial failure means (the CLI exits non-zero). Like Ansible's forks: a
fleet of hundreds of boards is worked through ``forks`` SSH sessions at a time (default
:data:`DEFAULT_FORKS`), so the host holds a bounded number of connections, and threads,
whatever the fleet's size; wall time grows as devices / forks.

Results are handed to ``on_result`` as each device finishes (in the calling thread, so a
view can print them without locks), and returned in the order of ``targets``. A device is
never waited for past its own timeouts (those of its :class:`~edgeship.core.config.Timeouts`);
``device_timeout`` adds a wall-clock limit on the whole operation per device, after which
it is recorded as a :class:`~edgeship.core.errors.RemoteTimeout`, its session is closed and
its slot goes to the next device.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edgeship.core.errors import EdgeshipError, RemoteTimeout, UsageError
from edgeship.targets import Target

__all__ = ["DEFAULT_FORKS", "DeviceResult", "FleetProgress", "OnResult", "T", "run_each"]

T = TypeVar("T")

DEFAULT_FORKS = 20
"""Devices worked on at once (Ansible's default is 5, its guidance 25-100; OpenSSH's
``MaxStartups`` 10:30:60 on a bastion makes about 10-30 connection starts at once safe)."""


@dataclass
class DeviceResult(Generic[T]):
    """One device's outcome. ``elapsed_s``: seconds from its start (not its queueing)."""

    target: str
    value: T | None = None
    error: EdgeshipError | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def error_dict(self) -> dict[str, Any] | None:
        if self.error is None:
            return None
        return {"type": type(self.error).__name__, "message": str(self.error)}


@dataclass(frozen=True)
class FleetProgress:
    """Where a fleet run stands when a device finishes: devices done (this one included),
    running, still queued, and in all."""

    done: int
    running: int
    queued: int
    total: int


OnResult = Callable[[DeviceResult[Any], FleetProgress], None]


def run_each(
    targets: Sequence[Target],
    operation: Callable[[Target], T],
    forks: int = DEFAULT_FORKS,
    *,
    on_result: OnResult | None = None,
    device_timeout: float | None = None,
) -> list[DeviceResult[T]]:
    """``operation(target)`` on every target, at most ``forks`` at a time; closes each.

    Expected failures (:class:`EdgeshipError`) are recorded per device; a bug still raises.
    ``on_result(result, progress)`` is called as each device finishes; ``device_timeout``
    (seconds, default none) bounds each device's operation in wall-clock time.
    """
    if forks < 1:
        raise UsageError(f"--forks must be at least 1, got {forks}")
    if device_timeout is not None and not device_timeout > 0:
        raise UsageError(f"the device timeout must be positive, got {device_timeout}")
    return _Fleet(list(targets), operation, forks, on_result, device_timeout).run()


_Outcome = tuple[int, "DeviceResult[Any] | BaseException"]


class _Fleet(Generic[T]):
    """One run: a queue of device indices, ``forks`` worker threads at most, and the
    calling thread collecting what they finish (and expiring what overstays)."""

    def __init__(
        self,
        targets: list[Target],
        operation: Callable[[Target], T],
        forks: int,
        on_result: OnResult | None,
        device_timeout: float | None,
    ) -> None:
        self.targets, self.operation, self.forks = targets, operation, forks
        self.on_result, self.device_timeout = on_result, device_timeout
        self.finished: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self.results: list[DeviceResult[T] | None] = [None] * len(targets)
        self.queued = deque(range(len(targets)))
        self.running: dict[int, float] = {}  # index -> monotonic start

    def run(self) -> list[DeviceResult[T]]:
        while self.queued or self.running:
            while self.queued and len(self.running) < self.forks:
                self._start(self.queued.popleft())
            try:
                index, outcome = self.finished.get(timeout=self._wait_s())
            except queue.Empty:
                self._expire()
                continue
            if index not in self.running:  # it had overstayed and was reported already
                continue
            del self.running[index]
            if isinstance(outcome, BaseException):
                raise outcome
            self._record(index, outcome)
        return [r for r in self.results if r is not None]

    def _start(self, index: int) -> None:
        self.running[index] = time.monotonic()
        name = f"fleet-{self.targets[index].name}"
        threading.Thread(target=self._one, args=(index,), name=name, daemon=True).start()

    def _one(self, index: int) -> None:
        target, started = self.targets[index], time.monotonic()
        try:
            with target:
                value = self.operation(target)
            result = DeviceResult(target.name, value=value)
        except EdgeshipError as exc:
            result = DeviceResult(target.name, error=exc)
        except BaseException as exc:  # a bug: raised in the caller's thread
            self.finished.put((index, exc))
            return
        result.elapsed_s = time.monotonic() - started
        self.finished.put((index, result))

    def _wait_s(self) -> float | None:
        """Until the earliest running device overstays (None: no limit, wait for one)."""
        if self.device_timeout is None or not self.running:
            return None
        earliest = min(self.running.values())
        return max(0.0, earliest + self.device_timeout - time.monotonic())

    def _expire(self) -> None:
        assert self.device_timeout is not None
        now = time.monotonic()
        for index, started in list(self.running.items()):
            if now - started < self.device_timeout:
                continue
            del self.running[index]
            target = self.targets[index]
            error = RemoteTimeout(
                f"{target.name}: no result within {self.device_timeout:g} s; its session "
                "was closed and the device reported as failed",
                target=target.name,
            )
            # closing from here ends its connection, so its thread ends soon too
            threading.Thread(target=_close_quietly, args=(target,), daemon=True).start()
            self._record(index, DeviceResult(target.name, error=error, elapsed_s=now - started))

    def _record(self, index: int, result: DeviceResult[T]) -> None:
        self.results[index] = result
        if self.on_result is not None:
            done = sum(r is not None for r in self.results)
            progress = FleetProgress(done, len(self.running), len(self.queued), len(self.targets))
            self.on_result(result, progress)


def _close_quietly(target: Target) -> None:
    with contextlib.suppress(Exception):
        target.close()
