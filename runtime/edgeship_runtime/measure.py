"""Measurement policy, the timing loop, and the profile report built from them."""

from __future__ import annotations

import datetime
import gc
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from . import __version__, environment
from .errors import UsageError
from .memory import PeakRss
from .model import LoadedModel
from .report import MemoryStats, PolicyRecord, ProfileReport, TensorSummary
from .stats import summarize_ms, throughput_ips


@dataclass(frozen=True)
class MeasurePolicy:
    """How to measure: ``warmup`` untimed runs, then at least ``runs`` timed runs and
    at least ``min_seconds`` of timed running (whichever ends later)."""

    warmup: int = 10
    runs: int = 100
    min_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"runs must be at least 1, got {self.runs}")
        if self.warmup < 0:
            raise UsageError(f"warmup must be 0 or more, got {self.warmup}")
        if self.min_seconds < 0:
            raise UsageError(f"min_seconds must be 0 or more, got {self.min_seconds}")

    def record(self) -> PolicyRecord:
        return PolicyRecord(warmup=self.warmup, runs=self.runs, min_seconds=self.min_seconds)


def time_runs(
    model: LoadedModel, feeds: Mapping[str, np.ndarray], policy: MeasurePolicy
) -> Tuple[List[float], List[np.ndarray]]:
    """Per-run latencies in ms (``perf_counter_ns`` around the backend call) and last outputs.

    The garbage collector is paused while timing, as ``timeit`` does, so a collection
    triggered by our own bookkeeping does not land in a sample.
    """
    outputs = model.run(feeds)  # the first inference, timed separately by the model
    for _ in range(max(policy.warmup - 1, 0)):
        model.session.run(feeds)
    run = model.session.run
    samples_ns: List[int] = []
    min_ns = int(policy.min_seconds * 1e9)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        while len(samples_ns) < policy.runs or time.perf_counter_ns() - started < min_ns:
            t0 = time.perf_counter_ns()
            outputs = run(feeds)
            samples_ns.append(time.perf_counter_ns() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [ns / 1e6 for ns in samples_ns], outputs


def profile(
    model: LoadedModel,
    feeds: Mapping[str, np.ndarray],
    policy: MeasurePolicy,
    keep_samples: bool = False,
) -> ProfileReport:
    peak = PeakRss()
    peak.start()
    samples, outputs = time_runs(model, feeds, policy)
    batch = batch_size(feeds)
    return ProfileReport(
        model=model.info,
        backend=model.backend,
        policy=policy.record(),
        inputs=[summarize_tensor(k, v, finite=False) for k, v in feeds.items()],
        batch_size=batch,
        load_ms=model.load_ms,
        first_inference_ms=model.first_inference_ms or 0.0,
        latency_ms=summarize_ms(samples),
        throughput_ips=throughput_ips(samples, batch),
        memory_mb=MemoryStats(
            rss_before_load=model.rss_before_load_mb,
            rss_after_load=model.rss_after_load_mb,
            peak_rss=max(model.load_peak_mb, peak.peak_mb()),
            load_delta=model.rss_after_load_mb - model.rss_before_load_mb,
            method=peak.method,
        ),
        environment=environment.collect(),
        outputs=[
            summarize_tensor(spec.name, out)
            for spec, out in zip(model.session.signature.outputs, outputs)
        ],
        runtime_version=__version__,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        samples_ms=samples if keep_samples else None,
    )


def batch_size(feeds: Mapping[str, np.ndarray]) -> int:
    """Leading dim of the first input of rank ≥ 2 (a batch), else 1."""
    for array in feeds.values():
        if array.ndim >= 2:
            return int(array.shape[0])
    return 1


def summarize_tensor(name: str, array: np.ndarray, finite: bool = True) -> TensorSummary:
    all_finite = None
    if finite and array.dtype.kind in "fc":
        all_finite = bool(np.isfinite(array).all())
    return TensorSummary(
        name=name, shape=list(array.shape), dtype=array.dtype.name, all_finite=all_finite
    )
