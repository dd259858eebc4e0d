"""Measurement policy, the timing loop, and the profile report built from them.

A profile warms the model up until its rolling median settles (at least ``warmup`` runs),
snapshots the device's clock and heat, times the window (with any power sensors read
over exactly that window), snapshots again, and judges the result (:mod:`.guards`).

Windows are sized by time, not by a count: a figure rests on at least ``min_seconds`` of
timed running (one second by default, as TFLite's ``benchmark_model``) and at least
``runs`` runs, whichever ends later; an interleaved A/B session runs rounds until every
model has its ``min_seconds``. The time counted is the runs' own (the sum of the
samples), so the figure rests on that much measured time whatever the loop costs.
"""

from __future__ import annotations

import datetime
import gc
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Tuple

import numpy as np

from . import __version__, environment, guards
from .environment import pinned
from .errors import UsageError
from .memory import PeakRss
from .model import LoadedModel
from .power import EnergyMeter
from .report import (
    EnergyReport,
    MemoryStats,
    PolicyRecord,
    ProfileReport,
    TensorSummary,
    Validity,
)
from .stats import summarize_ms, throughput_ips

DEFAULT_MIN_SECONDS = 1.0
"""Timed running behind one figure by default, in seconds (TFLite's benchmark_model runs
at least one second too): 100 runs of a 0.2 ms model are 20 ms, which one preemption
can flip."""

Clock = Callable[[], int]
"""A monotonic clock in nanoseconds (``time.perf_counter_ns``; tests give a fake)."""


@dataclass(frozen=True)
class MeasurePolicy:
    """How to measure: ``warmup`` untimed runs, then at least ``runs`` timed runs and
    at least ``min_seconds`` of timed running (whichever ends later; 0: a count alone).

    ``steady``: ``warmup`` is a minimum and the warm-up goes on until the rolling median
    settles (at most ``max_warmup_runs`` runs, or ``warmup`` if more, or
    ``max_warmup_seconds`` past ``warmup``); ``energy``: read
    the device's power sensors over the timed window; ``cpus``: pin the runtime's
    threads to these CPUs while measuring (empty: where the system puts them).
    """

    warmup: int = 10
    runs: int = 100
    min_seconds: float = DEFAULT_MIN_SECONDS
    steady: bool = True
    energy: bool = True
    max_warmup_runs: int = 200
    max_warmup_seconds: float = 10.0
    cpus: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"runs must be at least 1, got {self.runs}")
        if self.warmup < 0:
            raise UsageError(f"warmup must be 0 or more, got {self.warmup}")
        if self.min_seconds < 0:
            raise UsageError(f"min_seconds must be 0 or more, got {self.min_seconds}")
        if self.max_warmup_seconds < 0:
            raise UsageError(f"max_warmup_seconds must be 0 or more, got {self.max_warmup_seconds}")

    def record(self) -> PolicyRecord:
        return PolicyRecord(
            warmup=self.warmup,
            runs=self.runs,
            min_seconds=self.min_seconds,
            steady=self.steady,
            cpus=list(self.cpus),
        )


class Window(Protocol):
    """Something to start right before the timed loop and stop right after it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class WarmupRecord:
    """How the warm-up went: ``runs`` untimed runs (the first inference included);
    ``settled``: whether the rolling median had settled (None: a fixed warm-up);
    ``drift``: the last relative change of the rolling median."""

    runs: int
    settled: Optional[bool] = None
    drift: Optional[float] = None


def warm_up(
    model: LoadedModel, feeds: Mapping[str, np.ndarray], policy: MeasurePolicy
) -> WarmupRecord:
    """The first inference, then at least ``policy.warmup`` runs in all; with
    ``policy.steady`` more until two consecutive windows of
    :data:`~.guards.STEADY_WINDOW` runs have medians within
    :data:`~.guards.STEADY_TOLERANCE` of each other, or the limits are reached."""
    times_ms = [_timed(model.run, feeds)]  # the first inference, timed by the model too
    if not policy.steady or policy.warmup == 0:
        for _ in range(max(policy.warmup - 1, 0)):
            model.session.run(feeds)
        return WarmupRecord(runs=max(policy.warmup, 1))
    run = model.session.run
    deadline: Optional[float] = None  # counted from the end of the minimum warm-up
    moved = None
    while True:
        done = len(times_ms)
        if done >= policy.warmup:
            if deadline is None:
                deadline = time.perf_counter() + policy.max_warmup_seconds
            moved = guards.drift(times_ms)
            if moved is not None and moved <= guards.STEADY_TOLERANCE:
                return WarmupRecord(runs=done, settled=True, drift=moved)
            if done >= max(policy.max_warmup_runs, policy.warmup) or time.perf_counter() > deadline:
                return WarmupRecord(runs=done, settled=False, drift=moved)
        times_ms.append(_timed(run, feeds))


def _timed(
    run: Callable[[Mapping[str, np.ndarray]], object], feeds: Mapping[str, np.ndarray]
) -> float:
    t0 = time.perf_counter_ns()
    run(feeds)
    return (time.perf_counter_ns() - t0) / 1e6


def time_runs(
    model: LoadedModel,
    feeds: Mapping[str, np.ndarray],
    policy: MeasurePolicy,
    warmed: bool = False,
    window: Optional[Window] = None,
    clock: Clock = time.perf_counter_ns,
) -> Tuple[List[float], List[np.ndarray]]:
    """Per-run latencies in ms (``clock`` around the backend call) and last outputs: at
    least ``policy.runs`` runs and at least ``policy.min_seconds`` of them summed.

    Without ``warmed``, the first inference and ``policy.warmup - 1`` untimed runs come
    first. ``window`` is started right before the first timed run and stopped right
    after the last. The garbage collector is paused while timing, as ``timeit`` does, so
    a collection triggered by our own bookkeeping does not land in a sample.
    """
    outputs: List[np.ndarray] = []
    if not warmed:
        outputs = model.run(feeds)  # the first inference, timed separately by the model
        for _ in range(max(policy.warmup - 1, 0)):
            model.session.run(feeds)
    run = model.session.run
    samples_ns: List[int] = []
    min_ns = int(policy.min_seconds * 1e9)
    timed_ns = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    if window is not None:
        window.start()
    try:
        while len(samples_ns) < policy.runs or timed_ns < min_ns:
            t0 = clock()
            outputs = run(feeds)
            took = clock() - t0
            samples_ns.append(took)
            timed_ns += took
    finally:
        if window is not None:
            window.stop()
        if gc_was_enabled:
            gc.enable()
    return [ns / 1e6 for ns in samples_ns], outputs


@dataclass(frozen=True)
class InterleavePolicy:
    """Interleaved timing of several models (the A/B design): ``warmup`` untimed runs per
    model, then rounds; each round runs every model once, in a fresh random order drawn
    from ``seed``, for ``block`` consecutive timed runs. Rounds go on until there have
    been at least ``blocks`` and every model's timed runs add up to ``min_seconds``
    (0: ``blocks`` rounds exactly). ``cpus``: pin the runtime's threads to these CPUs
    while timing."""

    warmup: int = 10
    block: int = 10
    blocks: int = 20
    seed: int = 0
    min_seconds: float = 0.0
    cpus: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise UsageError(f"warmup must be 0 or more, got {self.warmup}")
        if self.block < 1:
            raise UsageError(f"block must be at least 1, got {self.block}")
        if self.blocks < 1:
            raise UsageError(f"blocks must be at least 1, got {self.blocks}")
        if self.min_seconds < 0:
            raise UsageError(f"min_seconds must be 0 or more, got {self.min_seconds}")


def interleave_runs(
    models: Sequence[LoadedModel],
    feeds: Sequence[Mapping[str, np.ndarray]],
    policy: InterleavePolicy,
    clock: Clock = time.perf_counter_ns,
) -> Tuple[List[List[float]], List[List[int]]]:
    """Per-model latencies in ms, in run order, and each round's order of model indices.

    Block ``k`` of model ``i`` is ``samples[i][k * block:(k + 1) * block]``, run in round
    ``k``. Each run is timed as :func:`time_runs` does (``clock`` around the backend
    call, the garbage collector paused), so drift over the rounds (heat, clock, other
    load) falls on every model alike. Every model runs the same number of rounds: as
    many as the slowest to reach ``policy.min_seconds`` needs.
    """
    if len(models) != len(feeds):
        raise UsageError(f"{len(models)} models but {len(feeds)} feed sets")
    for model, model_feeds in zip(models, feeds):
        model.run(model_feeds)  # the first inference, timed separately by the model
        for _ in range(max(policy.warmup - 1, 0)):
            model.session.run(model_feeds)
    rng = random.Random(policy.seed)
    samples_ns: List[List[int]] = [[] for _ in models]
    timed_ns = [0] * len(models)
    min_ns = int(policy.min_seconds * 1e9)
    rounds: List[List[int]] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(rounds) < policy.blocks or min(timed_ns) < min_ns:
            order = list(range(len(models)))
            rng.shuffle(order)
            rounds.append(order)
            for i in order:
                run, model_feeds, out = models[i].session.run, feeds[i], samples_ns[i]
                for _ in range(policy.block):
                    t0 = clock()
                    run(model_feeds)
                    took = clock() - t0
                    out.append(took)
                    timed_ns[i] += took
    finally:
        if gc_was_enabled:
            gc.enable()
    return [[ns / 1e6 for ns in model_ns] for model_ns in samples_ns], rounds


def profile(
    model: LoadedModel,
    feeds: Mapping[str, np.ndarray],
    policy: MeasurePolicy,
    keep_samples: bool = False,
) -> ProfileReport:
    peak = PeakRss()
    peak.start()
    with pinned(policy.cpus):
        warm = warm_up(model, feeds, policy)
        meter = EnergyMeter.discover() if policy.energy else None
        before = guards.snapshot()
        samples, outputs = time_runs(model, feeds, policy, warmed=True, window=meter)
        after = guards.snapshot()
    validity = guards.judge(samples, before, after, warm.runs, warm.settled, warm.drift)
    energy = meter.report(len(samples)) if meter is not None else None
    return build_report(
        model, feeds, policy, samples, outputs, peak, keep_samples, validity=validity, energy=energy
    )


def build_report(
    model: LoadedModel,
    feeds: Mapping[str, np.ndarray],
    policy: MeasurePolicy,
    samples: List[float],
    outputs: Sequence[np.ndarray],
    peak: PeakRss,
    keep_samples: bool = False,
    throughput: Optional[float] = None,
    validity: Optional[Validity] = None,
    energy: Optional[EnergyReport] = None,
) -> ProfileReport:
    """The report of ``samples`` (ms) of ``model`` on ``feeds``; ``throughput`` (samples/s)
    when it was measured otherwise than from the samples (a sharded stream)."""
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
        throughput_ips=throughput_ips(samples, batch) if throughput is None else throughput,
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
        validity=validity,
        energy=energy,
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
