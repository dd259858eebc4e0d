"""A fake executor for the sweep's driver: canned variants and cells, no model or board.

Its compressions write a few bytes as the made model; its cells succeed with figures
derived from the variant's name, except on the boards in ``failing``.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from edgeship.ab.result import Interval
from edgeship.sweep._executor import Executor
from edgeship.sweep._report import (
    DONE,
    FAILED,
    Cell,
    CellRecord,
    CellResult,
    ErrorInfo,
    VariantRecord,
)
from edgeship.sweep._work import CompressJob, MeasureJob, VariantOutcome

T = TypeVar("T")

SPEEDUPS = {"fast": 2.0, "small": 1.2, "slow": 0.8}


def result(speedup: float, size: int = 100, accuracy: float | None = None) -> CellResult:
    return CellResult(
        p50_ms=1.0 / speedup,
        p90_ms=1.1 / speedup,
        base_p50_ms=1.0,
        speedup=speedup,
        speedup_ci=Interval(speedup * 0.9, speedup * 1.1),
        verdict="faster" if speedup > 1 else "slower",
        size_bytes=size,
        base_size_bytes=400,
        backend="onnxruntime",
        accuracy=accuracy,
    )


class FakeExecutor(Executor):
    name = "fake"

    def __init__(self, failing: tuple[str, ...] = (), broken: tuple[str, ...] = ()) -> None:
        self.failing, self.broken = set(failing), set(broken)
        self.made: list[str] = []
        self.jobs: list[CompressJob] = []
        self.measured: list[tuple[str, str]] = []

    def compress(self, job: CompressJob) -> Future[VariantOutcome]:
        self.made.append(job.variant)
        self.jobs.append(job)
        record = VariantRecord(job.variant, job.config.method, job.fingerprint, FAILED)
        record.path = job.path
        if job.variant in self.broken:
            record.error = ErrorInfo("CompressionError", "nothing to prune")
            return _done(VariantOutcome(record))
        data = f"model {job.variant}".encode()
        Path(job.out).parent.mkdir(parents=True, exist_ok=True)
        Path(job.out).write_bytes(data)
        record.status, record.sha256 = DONE, hashlib.sha256(data).hexdigest()
        record.size_bytes = len(data)
        return _done(VariantOutcome(record, '{"model": {"path": ""}}'))

    def measure(self, job: MeasureJob) -> Future[CellRecord]:
        self.measured.append((job.variant, job.board))
        cell = Cell(job.variant, job.board, DONE, result(SPEEDUPS.get(job.variant, 1.0)))
        if job.board in self.failing:
            cell = Cell(job.variant, job.board, FAILED, error=ErrorInfo("ConnectError", "gone"))
        return _done(CellRecord(cell, job.fingerprint, "2026-01-01T00:00:00+00:00"))

    def close(self) -> None:
        pass


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future
