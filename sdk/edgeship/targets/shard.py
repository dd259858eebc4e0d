"""Sharded inference from the host: shards or a pipeline on one device, a data set across many.

On one device the runtime does the work (:mod:`edgeship_runtime.parallel`); this module
only says what to ask for — :class:`ParallelConfig` and :func:`profile_parallel`, behind
``edgeship profile MODEL --shards N`` and ``--pipeline DIR``. A pipeline's stage files
are staged on the device like any model; the device wires them by tensor name.

Across devices, :func:`run_sharded` (``edgeship run MODEL --target GROUP --shard``) cuts a
data set into chunks that every device pulls from one queue, so a faster device takes
more. A device that fails is retired and its chunk goes back to the queue for the others;
the run fails only when no device is left, or at once when the request itself is wrong
(bad inputs, bad model). Outputs are gathered in order.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.config import ParallelConfig, ProfileConfig
from edgeship.core.errors import EdgeshipError, InputError, ModelError, TargetError, UsageError
from edgeship.targets import Target
from edgeship_runtime.inputs import LABELS_KEY
from edgeship_runtime.report import ProfileReport

__all__ = [
    "CHUNKS_PER_DEVICE",
    "FATAL",
    "DeviceShare",
    "ShardError",
    "ShardedRun",
    "chunk_bounds",
    "describe_parallel",
    "profile_parallel",
    "run_sharded",
]

FATAL = (UsageError, InputError, ModelError)
"""Errors that are the request's fault, not the device's: re-running elsewhere is futile."""

CHUNKS_PER_DEVICE = 4


class ShardError(TargetError):
    """Every device failed before the data set was done; ``errors`` maps device → message."""

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message, target=",".join(errors), errors=errors)
        self.errors = errors


# ------------------------------------------------------------------------------ one device


def profile_parallel(
    target: Target,
    model: Path,
    config: ProfileConfig,
    parallel: ParallelConfig,
    progress: Callable[[], None] | None = None,
) -> ProfileReport:
    """Like :meth:`Target.profile` with the session as given, as a stream over shards or
    pipeline stages; the report has its ``parallel`` section filled. ``progress`` is
    called once the model is loaded (its upload done), when the stream starts."""
    with target.load(model, config) as loaded:
        if progress is not None:
            progress()
        return loaded.profile(parallel=parallel)


def describe_parallel(report: ProfileReport) -> str:
    """A few lines on a report's ``parallel`` section (empty without one)."""
    p = report.parallel
    if p is None:
        return ""
    lines = [
        f"{p.mode}: {p.n_workers} workers, {p.requests} requests of {p.request_batch} in "
        f"{p.wall_s:.3f} s = {p.throughput_rps:,.0f} requests/s; queue p50 "
        f"{p.queue_ms.p50:.3f} ms, end-to-end p50 {p.end_to_end_ms.p50:.3f} ms"
    ]
    for w in p.workers:
        lat = f"{w.latency_ms.p50:.3f}" if w.latency_ms else "-"
        lines.append(
            f"  {w.role} {w.index}: cores {w.cpus or 'any'}, {w.requests} requests, "
            f"p50 {lat} ms, utilisation {w.utilisation:.0%}"
        )
    if p.baseline is not None:
        line = f"baseline ({p.baseline.description}): {p.baseline.throughput_rps:,.0f} requests/s"
        if p.speedup is not None:
            line += f"; speedup {p.speedup:.2f}x"
        if p.scaling_efficiency is not None:
            line += f", scaling efficiency {p.scaling_efficiency:.0%}"
        lines.append(line)
    if p.check is not None:
        verdict = "identical within" if p.check.ok else "DIFFERENT beyond"
        worst = "shapes differ" if p.check.max_abs_diff is None else f"{p.check.max_abs_diff:.3g}"
        lines.append(
            f"outputs vs {p.check.reference}: {verdict} rtol={p.check.rtol:g} "
            f"atol={p.check.atol:g} (max |diff| {worst})"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ devices


@dataclass
class DeviceShare:
    """What one device did: samples, chunks, seconds spent in its calls, or its error."""

    target: str
    samples: int = 0
    chunks: int = 0
    busy_s: float = 0.0
    error: str | None = None

    @property
    def throughput_ips(self) -> float:
        return self.samples / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class ShardedRun:
    """A data set run across devices: outputs in order, and who did what.

    ``run_s`` is the time from the first chunk sent to the last received (devices
    connected and model loaded); ``wall_s`` the whole call. ``reruns`` counts chunks run
    again after a device failed.
    """

    outputs: dict[str, np.ndarray]
    samples: int
    devices: list[DeviceShare] = field(default_factory=list)
    wall_s: float = 0.0
    run_s: float = 0.0
    reruns: int = 0

    @property
    def throughput_ips(self) -> float:
        return self.samples / self.run_s if self.run_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "wall_s": self.wall_s,
            "run_s": self.run_s,
            "throughput_ips": self.throughput_ips,
            "reruns": self.reruns,
            "outputs": {
                k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in self.outputs.items()
            },
            "devices": [
                {
                    "target": d.target,
                    "samples": d.samples,
                    "chunks": d.chunks,
                    "busy_s": d.busy_s,
                    "throughput_ips": d.throughput_ips,
                    "error": d.error,
                }
                for d in self.devices
            ],
        }

    def describe(self) -> str:
        lines = [
            f"{self.samples} samples on {len(self.devices)} devices in {self.run_s:.3f} s: "
            f"{self.throughput_ips:,.0f} samples/s ({self.reruns} chunks re-run)"
        ]
        for d in self.devices:
            state = f"failed: {d.error}" if d.error else f"{d.throughput_ips:,.0f} samples/s"
            lines.append(f"  {d.target}: {d.samples} samples in {d.chunks} chunks, {state}")
        return "\n".join(lines)


class _Work:
    """The chunk queue the device threads share; a failed device's chunk goes back.

    Chunks are handed out once every device has loaded the model or failed to, so that
    a device that needs longer to start (a first upload) still gets its share, and
    ``run_s`` times the devices running together.
    """

    def __init__(self, chunks: int, devices: int) -> None:
        self.pending = collections.deque(range(chunks))
        self.starting = devices
        self.results: dict[int, dict[str, np.ndarray]] = {}
        self.failures: collections.Counter[int] = collections.Counter()
        self.in_flight = 0
        self.reruns = 0
        self.fatal: EdgeshipError | None = None
        self.bug: BaseException | None = None
        self.first_ns: int | None = None
        self.last_ns = 0
        self.cv = threading.Condition()

    def started(self) -> None:
        """A device has loaded the model, or failed before it could."""
        with self.cv:
            self.starting -= 1
            self.cv.notify_all()

    def take(self) -> int | None:
        """The next chunk, once all devices started; waits while chunks are in flight
        elsewhere (they come back if their device fails)."""
        with self.cv:
            while self.fatal is None and (
                self.starting > 0 or (not self.pending and self.in_flight)
            ):
                self.cv.wait()
            if self.fatal is not None or not self.pending:
                return None
            self.in_flight += 1
            if self.first_ns is None:
                self.first_ns = time.monotonic_ns()
            return self.pending.popleft()

    def finish(self, chunk: int, outputs: dict[str, np.ndarray]) -> None:
        with self.cv:
            self.results[chunk] = outputs
            self.in_flight -= 1
            self.last_ns = time.monotonic_ns()
            self.cv.notify_all()

    def give_back(self, chunk: int, error: EdgeshipError) -> None:
        """A device failed on ``chunk``: queue it again, unless the chunk itself is bad."""
        with self.cv:
            self.in_flight -= 1
            self.failures[chunk] += 1
            if isinstance(error, FATAL) or (
                self.failures[chunk] > 1 and not isinstance(error, TargetError)
            ):
                self.fatal = self.fatal or error
            else:
                self.pending.appendleft(chunk)
                self.reruns += 1
            self.cv.notify_all()

    def abort(self, error: EdgeshipError) -> None:
        with self.cv:
            self.fatal = self.fatal or error
            self.cv.notify_all()


def chunk_bounds(samples: int, chunk: int) -> list[tuple[int, int]]:
    """``[start, end)`` of consecutive chunks of ``chunk`` samples (the last may be short)."""
    return [(a, min(a + chunk, samples)) for a in range(0, samples, chunk)]


def run_sharded(
    model: Path,
    targets: Sequence[Target],
    inputs: Mapping[str, np.ndarray],
    config: ProfileConfig | None = None,
    *,
    chunk: int | None = None,
    request_batch: int | None = None,
    device_shards: int | None = None,
) -> ShardedRun:
    """Run ``model`` on a data set split across ``targets``; outputs in sample order.

    ``inputs``: arrays by input name sharing a leading (sample) dim (``labels`` is
    dropped). ``chunk``: samples per chunk (default: an even split into
    ``CHUNKS_PER_DEVICE`` chunks per device, rounded to ``request_batch``). On each
    device a chunk runs as requests of ``request_batch`` samples (default: one call),
    on ``device_shards`` local shards if given. Closes the targets.
    """
    if not targets:
        raise UsageError("sharding needs at least one target")
    arrays = {k: np.asarray(v) for k, v in inputs.items() if k != LABELS_KEY}
    samples = _samples(arrays)
    step = request_batch or 1
    chunk = chunk or max(1, math.ceil(samples / (len(targets) * CHUNKS_PER_DEVICE)))
    chunk = max(step, chunk // step * step)
    bounds = chunk_bounds(samples, chunk)
    work = _Work(len(bounds), len(targets))
    shares = [DeviceShare(t.name) for t in targets]
    extra = {"request_batch": request_batch, "shards": device_shards}
    config = config or ProfileConfig()
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=_device_loop,
            args=(t, share, Path(model), config, arrays, bounds, work, extra),
            name=f"edgeship-shard-{t.name}",
            daemon=True,
        )
        for t, share in zip(targets, shares, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if work.bug is not None:
        raise work.bug
    if work.fatal is not None:
        raise work.fatal
    missing = [i for i in range(len(bounds)) if i not in work.results]
    if missing:
        errors = {s.target: s.error or "stopped" for s in shares}
        raise ShardError(
            f"every device failed with {len(missing)} of {len(bounds)} chunks left: "
            + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            errors,
        )
    parts = [work.results[i] for i in range(len(bounds))]
    outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    run_s = (work.last_ns - (work.first_ns or work.last_ns)) / 1e9
    return ShardedRun(outputs, samples, shares, time.monotonic() - started, run_s, work.reruns)


def _samples(arrays: Mapping[str, np.ndarray]) -> int:
    rows = {int(a.shape[0]) if a.ndim else 0 for a in arrays.values()}
    if len(rows) != 1 or not min(rows, default=0):
        raise InputError(f"sharded inputs must share a leading (sample) dim, got {sorted(rows)}")
    return rows.pop()


def _device_loop(
    target: Target,
    share: DeviceShare,
    model: Path,
    config: ProfileConfig,
    arrays: Mapping[str, np.ndarray],
    bounds: Sequence[tuple[int, int]],
    work: _Work,
    extra: Mapping[str, int | None],
) -> None:
    """One device: load once, then run chunks until none are left or the device fails."""
    chunk: int | None = None
    starting = True
    try:
        with target, target.load(model, config) as loaded:
            starting = False
            work.started()
            while (chunk := work.take()) is not None:
                start, end = bounds[chunk]
                t0 = time.monotonic()
                outputs = loaded.run({k: v[start:end] for k, v in arrays.items()}, **extra)
                share.busy_s += time.monotonic() - t0
                share.samples += end - start
                share.chunks += 1
                work.finish(chunk, outputs)
                chunk = None
    except EdgeshipError as exc:
        share.error = str(exc)
        if starting:
            work.started()
        if chunk is not None:
            work.give_back(chunk, exc)
        elif isinstance(exc, FATAL):
            work.abort(exc)
    except BaseException as exc:  # a bug: stop everyone, raise it in the caller's thread
        share.error = f"{type(exc).__name__}: {exc}"
        work.bug = work.bug or exc
        if starting:
            work.started()
        work.abort(EdgeshipError(share.error))
