"""The two kinds of work in a sweep, as plain functions every executor runs the same way.

- :func:`compress_variant`: make one variant from the base (a compression task; checked
  on the worker's own ``local`` runtime, as ``edgeship compress`` does).
- :func:`measure_cell`: A/B one variant against the base on one board, through the
  existing A/B code (:func:`edgeship.ab.run_ab`), on a target the caller holds.

Both record an expected failure (:class:`EdgeshipError`) as a failed record and raise
only on a bug. Jobs hold paths on the machine that runs them; an executor that runs work
elsewhere moves the bytes (:mod:`.ray_executor`).
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeship.ab import ABConfig, ABReport, Schedule, run_ab
from edgeship.ab.result import Accuracy, Agreement
from edgeship.compress import CompressOptions, compress
from edgeship.compress.config import AnyConfig
from edgeship.compress.guard import GuardPolicy
from edgeship.core.errors import EdgeshipError
from edgeship.core.hashing import file_sha256
from edgeship.sweep._plan import Resources
from edgeship.sweep._report import (
    DONE,
    FAILED,
    Cell,
    CellRecord,
    CellResult,
    ErrorInfo,
    Policy,
    VariantRecord,
)
from edgeship.targets import Target
from edgeship_runtime.backends import SessionOptions

__all__ = [
    "CompressJob",
    "MeasureJob",
    "VariantOutcome",
    "ab_config",
    "cell_result",
    "compress_variant",
    "measure_cell",
    "now_utc",
    "worker_name",
]


@dataclass(frozen=True)
class CompressJob:
    """Make ``variant`` from ``base`` into ``out`` (``path``: ``out`` relative to the
    sweep's directory, as the record states it), judged by ``guard``."""

    variant: str
    config: AnyConfig
    base: Path
    data: Path | None
    out: Path
    path: str
    fingerprint: str
    resources: Resources
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    """The recipe's: the kinds of the outputs, whether degraded variants are kept."""


@dataclass
class VariantOutcome:
    """A compression's record, its full report (JSON) when it succeeded, and the model's
    bytes when it was made on another machine (None: already at ``job.out``)."""

    record: VariantRecord
    report_json: str | None = None
    model_bytes: bytes | None = None


@dataclass(frozen=True)
class MeasureJob:
    """A/B ``model`` (the variant) against ``base`` on ``board``."""

    variant: str
    board: str
    base: Path
    model: Path
    fingerprint: str
    policy: Policy
    eval_data: Path | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def compress_variant(job: CompressJob) -> VariantOutcome:
    """Make one variant; a failure of the method (or of its check) is a failed record."""
    record = VariantRecord(
        name=job.variant,
        method=job.config.method,
        fingerprint=job.fingerprint,
        status=FAILED,
        path=job.path,
        cpus=job.resources.cpus,
        gpus=job.resources.gpus,
        worker=worker_name(),
    )
    started = time.monotonic()
    try:
        options = CompressOptions("local", guard=job.guard)
        result = compress(job.base, job.config, job.data, job.out, options)
    except EdgeshipError as exc:
        record.error = ErrorInfo.of(exc)
        record.compress_s = round(time.monotonic() - started, 3)
        return VariantOutcome(record)
    report = result.report
    fid = report.fidelity
    record.status = DONE
    record.sha256 = file_sha256(job.out)
    record.size_bytes = report.model.size_bytes
    record.parameters = report.model.parameters
    record.sparsity = round(report.model.sparsity, 6)
    record.accuracy = None if fid is None else fid.accuracy
    record.top1_agreement = None if fid is None else fid.top1_agreement
    record.samples = None if fid is None else fid.samples
    record.accuracy_ci = None if fid is None else fid.accuracy_ci
    record.top1_agreement_ci = None if fid is None else fid.top1_agreement_ci
    record.compress_s = round(time.monotonic() - started, 3)
    return VariantOutcome(record, report.to_json())


def ab_config(policy: Policy, eval_data: Path | None) -> ABConfig:
    """The A/B of one cell, as the sweep's policy says."""
    schedule = Schedule(
        runs=policy.runs,
        sessions=policy.sessions,
        block=policy.block,
        warmup=policy.warmup,
        seed=policy.seed,
        min_seconds=policy.min_seconds,
    )
    return ABConfig(
        schedule=schedule,
        session=SessionOptions(threads=policy.threads),
        data=() if eval_data is None else (eval_data,),
        memory=policy.memory,
        memory_runs=policy.memory_runs,
    )


def measure_cell(target: Target, job: MeasureJob) -> CellRecord:
    """A/B ``job``'s variant against the base on ``target`` (held by the caller, which
    runs one cell at a time on it); a failure of the board is a failed cell."""
    started = time.monotonic()
    cell = Cell(job.variant, job.board, FAILED)
    ab: ABReport | None = None
    try:
        ab = run_ab(job.base, [job.model], target, ab_config(job.policy, job.eval_data))
        cell.result = cell_result(ab)
        cell.status = DONE
    except EdgeshipError as exc:
        cell.error = ErrorInfo.of(exc)
    cell.wall_s = round(time.monotonic() - started, 3)
    return CellRecord(
        cell=cell,
        fingerprint=job.fingerprint,
        finished_at=now_utc(),
        worker=worker_name(),
        ab=None if ab is None else ab.to_dict(),
    )


def cell_result(ab: ABReport) -> CellResult:
    """The figures of a one-device, one-variant A/B that a sweep compares."""
    (device,) = ab.devices
    base, variant = device.models
    (cmp,) = device.comparisons
    base_acc = None if base.accuracy is None else base.accuracy.accuracy
    acc = None if variant.accuracy is None else variant.accuracy.accuracy
    return CellResult(
        p50_ms=variant.latency.p50_ms,
        p90_ms=variant.latency.p90_ms,
        base_p50_ms=base.latency.p50_ms,
        speedup=cmp.speedup,
        speedup_ci=cmp.speedup_ci,
        verdict=cmp.verdict,
        size_bytes=variant.size_bytes,
        base_size_bytes=base.size_bytes,
        backend=variant.backend.name,
        peak_rss_mb=None if variant.memory is None else variant.memory.peak_rss_mb,
        base_peak_rss_mb=None if base.memory is None else base.memory.peak_rss_mb,
        memory_ratio=cmp.memory_ratio,
        accuracy=acc,
        base_accuracy=base_acc,
        accuracy_drop_pp=cmp.accuracy_drop_pp,
        top1_agreement=None if cmp.agreement is None else cmp.agreement.top1,
        samples=_samples(variant.accuracy, cmp.agreement),
        accuracy_ci=None if variant.accuracy is None else variant.accuracy.ci,
        base_accuracy_ci=None if base.accuracy is None else base.accuracy.ci,
        top1_agreement_ci=None if cmp.agreement is None else cmp.agreement.top1_ci,
    )


def _samples(accuracy: Accuracy | None, agreement: Agreement | None) -> int | None:
    """The samples both shares were judged on (the one data set of the A/B)."""
    return accuracy.n if accuracy is not None else None if agreement is None else agreement.n
