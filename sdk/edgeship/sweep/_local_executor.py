"""The executor without Ray: threads in this process.

Compression jobs share this machine's CPUs as Ray would share a node's: a job waits
until the CPUs it declares are free (a GPU declaration is ignored here). Each board has
a lane of its own, one thread that holds the board's target and measures one cell at a
time; at most ``forks`` boards measure at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import EdgeshipError
from edgeship.sweep._executor import Executor
from edgeship.sweep._report import FAILED, Cell, CellRecord, ErrorInfo
from edgeship.sweep._work import (
    CompressJob,
    MeasureJob,
    VariantOutcome,
    compress_variant,
    measure_cell,
    now_utc,
)
from edgeship.targets import Target, open_target
from edgeship.targets.fleet import DEFAULT_FORKS

__all__ = ["LocalExecutor", "Slots", "T", "Workers", "failed_cell"]

T = TypeVar("T")


class Workers:
    """A pool of daemon threads: unlike ``ThreadPoolExecutor``'s, they do not hold the
    process at exit, so an interrupted sweep ends at once (what it stored stays stored)."""

    def __init__(self, n: int, name: str) -> None:
        self.jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self.threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(n)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self.jobs.put((future, fn))
        return future

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel what has not started; the threads end after their current job."""
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in self.threads:
            self.jobs.put(None)


class Slots:
    """``total`` CPUs handed out in amounts; a request above the total takes them all."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.free = total
        self.cond = threading.Condition()

    @contextlib.contextmanager
    def held(self, amount: float) -> Iterator[None]:
        amount = min(amount, self.total)
        with self.cond:
            self.cond.wait_for(lambda: self.free >= amount)
            self.free -= amount
        try:
            yield
        finally:
            with self.cond:
                self.free += amount
                self.cond.notify_all()


@dataclass
class _Lane:
    """One board: its thread, and its target once opened."""

    board: str
    worker: Workers
    target: Target | None = None


class LocalExecutor(Executor):
    name = "threads"

    def __init__(
        self, connect: ConnectOptions, cpus: int | None = None, forks: int = DEFAULT_FORKS
    ) -> None:
        self.connect = connect
        self.cpus = cpus or os.cpu_count() or 1
        self.slots = Slots(float(self.cpus))
        self.compressing = Workers(self.cpus, "sweep-compress")
        self.boards_at_once = threading.BoundedSemaphore(forks)
        self.lanes: dict[str, _Lane] = {}

    def compress(self, job: CompressJob) -> Future[VariantOutcome]:
        return self.compressing.submit(lambda: self._compress(job))

    def _compress(self, job: CompressJob) -> VariantOutcome:
        with self.slots.held(job.resources.cpus):
            return compress_variant(job)

    def measure(self, job: MeasureJob) -> Future[CellRecord]:
        lane = self.lanes.get(job.board)
        if lane is None:
            lane = self.lanes[job.board] = _Lane(job.board, Workers(1, f"sweep-{job.board}"))
        return lane.worker.submit(lambda: self._measure(lane, job))

    def _measure(self, lane: _Lane, job: MeasureJob) -> CellRecord:
        with self.boards_at_once:
            try:
                if lane.target is None:
                    lane.target = open_target(job.board, self.connect)
            except EdgeshipError as exc:
                return failed_cell(job, exc)
            return measure_cell(lane.target, job)

    def close(self) -> None:
        self.compressing.shutdown()
        for lane in self.lanes.values():
            lane.worker.shutdown()
            if lane.target is not None:
                with contextlib.suppress(Exception):
                    lane.target.close()


def failed_cell(job: MeasureJob, exc: BaseException) -> CellRecord:
    """A cell that never reached its A/B (the board could not be opened, its holder died)."""
    cell = Cell(job.variant, job.board, FAILED, error=ErrorInfo.of(exc))
    return CellRecord(cell=cell, fingerprint=job.fingerprint, finished_at=now_utc())
