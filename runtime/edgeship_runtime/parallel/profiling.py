"""The ``profile`` and ``run`` operations, sharded or pipelined (called from :mod:`..ops`).

Protocol arguments (all optional; see :mod:`edgeship_runtime.protocol`):

``profile``
    ``shards``: N data shards (0: as many as the cores suggest), or ``pipeline``:
    ``{"stages": [path...], "backends"?: [...], "providers"?: [[...]...],
    "threads"?: [...]}``; ``request_batch``: samples per request when ``inputs`` holds a
    data set (default: all of ``inputs`` is one request); ``baseline`` (default true):
    also time one shard (shards) or the unsplit model in this process (pipeline), for
    ``speedup`` and ``scaling_efficiency``; ``depth``: requests in flight per worker.
    ``runs`` requests make the stream (cycling over the distinct requests), ``warmup``
    runs warm each worker.
``run``
    ``shards``: run the data set on N shards; ``request_batch``: samples per request
    (default: the model's fixed batch, else an even split over the shards). With
    ``request_batch`` and no ``shards``, the requests run one by one in this process.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..backends import SessionOptions
from ..errors import InputError, UsageError
from ..inputs import Feeds, generate_feeds, validate_feeds
from ..measure import MeasurePolicy, batch_size, build_report
from ..memory import PeakRss
from ..model import LoadedModel
from ..report import (
    BackendUsage,
    ParallelBaseline,
    ParallelCheck,
    ParallelReport,
    ProfileReport,
    WorkerReport,
)
from ..stats import summarize_ms
from .affinity import usable_cpus
from .pipeline import Pipeline
from .runner import DEFAULT_DEPTH, ParallelRunner
from .shards import ShardPool
from .stream import StreamResult

GENERATED_REQUESTS = 8
"""Distinct generated requests a stream cycles through (seeds ``seed`` .. ``seed + 7``)."""

RTOL = ATOL = 1e-5


def session_options(model: LoadedModel) -> SessionOptions:
    """The options ``model`` was loaded with (recorded by ``Runtime.load``)."""
    options = model.extra.get("session_options")
    if isinstance(options, SessionOptions):
        return options
    return SessionOptions(threads=model.backend.threads)


# ------------------------------------------------------------------------------ profile


def profile_parallel(
    model: LoadedModel, feeds: Feeds, policy: MeasurePolicy, args: Mapping[str, Any]
) -> ProfileReport:
    """A profile of ``model`` as a stream of requests over shards or pipeline stages."""
    requests = stream_requests(model, feeds, args)[: policy.runs]
    depth = int(args.get("depth") or DEFAULT_DEPTH)
    runner = _open(model, requests[0], policy, args, depth)
    keeper = _Keeper(len(requests), runner.outputs)
    baseline: Optional[ParallelBaseline] = None
    peak = PeakRss()
    try:
        if args.get("baseline", True) and isinstance(runner, ShardPool) and runner.shards > 1:
            one = runner.stream(requests, policy.runs, shards=[0], min_seconds=policy.min_seconds)
            baseline = ParallelBaseline(
                "one shard of the same pool", one.requests, one.wall_s, _rps(one)
            )
        peak.start()
        result = runner.stream(requests, policy.runs, min_seconds=policy.min_seconds, sink=keeper)
    except BaseException:
        runner._abort()
        raise
    runner.close()
    if isinstance(runner, Pipeline) and args.get("baseline", True):
        baseline = time_in_process(model, requests, result.requests)
    section = parallel_section(runner, result, batch_size(requests[0]), baseline)
    section.check = check_outputs(model, requests, keeper.kept, "the model in the runtime process")
    samples = service_ms(result, runner.mode, len(section.workers))
    outputs = [keeper.kept[-1][spec.name] for spec in model.session.signature.outputs]
    report = build_report(
        model, requests[0], policy, samples, outputs, peak,
        keep_samples=bool(args.get("samples")), throughput=section.throughput_ips,
    )  # fmt: skip
    report.parallel = section
    return report


def _open(
    model: LoadedModel, template: Feeds, policy: MeasurePolicy, args: Mapping[str, Any], depth: int
) -> ParallelRunner:
    options, backend = session_options(model), model.backend.name
    spec = args.get("pipeline")
    if spec:
        stages = [str(p) for p in spec.get("stages") or []]
        outputs = [s.name for s in model.session.signature.outputs]
        return Pipeline(
            stages, template, outputs=outputs, backend=spec.get("backend") or backend,
            options=options, stage_backends=spec.get("backends"),
            stage_options=_stage_options(spec, options, len(stages)), depth=depth,
            warmup=policy.warmup,
        )  # fmt: skip
    shards = int(args.get("shards") or 0)
    return ShardPool(
        model.info.path, template, shards, backend=backend, options=options, depth=depth,
        warmup=policy.warmup,
    )  # fmt: skip


def _stage_options(
    spec: Mapping[str, Any], base: SessionOptions, k: int
) -> Optional[List[SessionOptions]]:
    providers, threads = spec.get("providers"), spec.get("threads")
    if providers is None and threads is None:
        return None
    for name, values in (("providers", providers), ("threads", threads)):
        if values is not None and len(values) != k:
            raise UsageError(f"pipeline {name} lists {len(values)} entries for {k} stages")
    return [
        replace(
            base,
            threads=int(threads[i]) if threads is not None else base.threads,
            providers=tuple(providers[i]) if providers is not None else base.providers,
        )
        for i in range(k)
    ]


def stream_requests(model: LoadedModel, feeds: Feeds, args: Mapping[str, Any]) -> List[Feeds]:
    """The distinct requests of a profile stream: ``inputs`` cut into ``request_batch``
    rows each (or whole), else generated ones with consecutive seeds."""
    batch = args.get("request_batch")
    if args.get("inputs"):
        return split_rows(feeds, int(batch)) if batch else [feeds]
    if batch:
        raise UsageError("request_batch cuts given inputs; for generated inputs use shapes")
    signature = model.session.signature
    shapes = {k: tuple(v) for k, v in (args.get("shapes") or {}).items()}
    seed = int(args.get("seed", 0))
    extra = [generate_feeds(signature, shapes, seed + i) for i in range(1, GENERATED_REQUESTS)]
    return [feeds, *extra]


def split_rows(feeds: Mapping[str, np.ndarray], batch: int) -> List[Feeds]:
    """Whole requests of ``batch`` rows each (a tail of fewer rows is left out)."""
    if batch < 1:
        raise UsageError(f"request_batch must be at least 1, got {batch}")
    rows = {int(v.shape[0]) if v.ndim else 0 for v in feeds.values()}
    if len(rows) != 1 or min(rows) < batch:
        raise InputError(
            f"inputs must share a leading dim of at least {batch} rows, got {sorted(rows)}"
        )
    (total,) = rows
    return [
        {k: v[i : i + batch] for k, v in feeds.items()} for i in range(0, total - batch + 1, batch)
    ]


class _Keeper:
    """Keeps a copy of the outputs of the first ``n`` requests (one per distinct request)."""

    def __init__(self, n: int, outputs: Mapping[str, str]) -> None:
        self.n = n
        self.outputs = dict(outputs)
        self.kept: List[Feeds] = [{} for _ in range(n)]

    def __call__(self, i: int, views: Mapping[str, np.ndarray]) -> None:
        if i < self.n:
            self.kept[i] = {name: views[area].copy() for name, area in self.outputs.items()}


def time_in_process(model: LoadedModel, requests: Sequence[Feeds], count: int) -> ParallelBaseline:
    """``count`` requests run back to back by ``model`` in this process (the unsplit model)."""
    run = model.session.run
    for feeds in requests:
        run(feeds)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.monotonic_ns()
        for i in range(count):
            run(requests[i % len(requests)])
        wall_s = (time.monotonic_ns() - t0) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
    return ParallelBaseline(
        "the unsplit model in the runtime process", count, wall_s, count / wall_s
    )


def check_outputs(
    model: LoadedModel, requests: Sequence[Feeds], got: Sequence[Feeds], reference: str
) -> ParallelCheck:
    """Each distinct request's parallel outputs against ``model`` run here on it.

    NaNs in the same places count as equal; ``max_abs_diff`` is over finite differences
    and None when a shape differs.
    """
    names = [s.name for s in model.session.signature.outputs]
    worst: Optional[float] = 0.0
    ok = True
    for feeds, outputs in zip(requests, got):
        for name, expected in zip(names, model.run(feeds)):  # times a first inference here
            value = outputs[name]
            if value.shape != expected.shape:
                return ParallelCheck(reference, len(requests), None, RTOL, ATOL, False)
            ok = ok and bool(np.allclose(value, expected, rtol=RTOL, atol=ATOL, equal_nan=True))
            diff = np.abs(value.astype(np.float64) - expected.astype(np.float64))
            finite = diff[np.isfinite(diff)]
            if finite.size:
                worst = max(worst or 0.0, float(finite.max()))
    return ParallelCheck(reference, len(requests), worst, RTOL, ATOL, ok)


# ------------------------------------------------------------------------------ statistics


def stage_columns(
    result: StreamResult, mode: str, k: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker ``k``'s requests (a mask), their waits and their service times, in ns."""
    s = result.stamps
    if mode == "shards":
        mask = result.route == k
        return mask, s[:, 1] - s[:, 0], s[:, 2] - s[:, 1]
    start, end = 1 + 2 * k, 2 + 2 * k
    previous = s[:, 0] if k == 0 else s[:, 2 * k]
    return np.ones(len(s), dtype=bool), s[:, start] - previous, s[:, end] - s[:, start]


def service_ms(result: StreamResult, mode: str, workers: int) -> List[float]:
    """Per request, in order: time inside the backend (summed over stages), in ms."""
    if mode == "shards":
        return ((result.stamps[:, 2] - result.stamps[:, 1]) / 1e6).tolist()
    total = sum(stage_columns(result, mode, k)[2] for k in range(workers))
    return (np.asarray(total) / 1e6).tolist()


def parallel_section(
    runner: ParallelRunner, result: StreamResult, batch: int, baseline: Optional[ParallelBaseline]
) -> ParallelReport:
    infos = runner.worker_info()
    workers = [_worker(result, runner.mode, k, info) for k, info in enumerate(infos)]
    queue = sum(stage_columns(result, runner.mode, k)[1] for k in range(len(infos)))
    if runner.mode == "shards":
        queue = result.stamps[:, 1] - result.stamps[:, 0]
    rps = _rps(result)
    peaks = [w.peak_rss_mb for w in workers if w.peak_rss_mb is not None]
    section = ParallelReport(
        mode=runner.mode,
        n_workers=len(workers),
        request_batch=batch,
        requests=result.requests,
        wall_s=result.wall_s,
        throughput_rps=rps,
        throughput_ips=rps * batch,
        queue_ms=summarize_ms((np.asarray(queue) / 1e6).tolist()),
        end_to_end_ms=summarize_ms(((result.stamps[:, -1] - result.stamps[:, 0]) / 1e6).tolist()),
        workers=workers,
        baseline=baseline,
        total_peak_rss_mb=sum(peaks) if peaks else None,
    )
    if baseline is not None and baseline.throughput_rps > 0:
        section.speedup = rps / baseline.throughput_rps
        if runner.mode == "shards":
            section.scaling_efficiency = rps / (len(workers) * baseline.throughput_rps)
    return section


def _worker(result: StreamResult, mode: str, k: int, info: Mapping[str, Any]) -> WorkerReport:
    mask, wait_ns, service_ns = stage_columns(result, mode, k)
    service, wait = service_ns[mask] / 1e6, wait_ns[mask] / 1e6
    busy_s = float(service.sum()) / 1e3
    stats = info.get("stats") or {}
    return WorkerReport(
        index=k,
        role="shard" if mode == "shards" else "stage",
        model_path=str(info.get("path", "")),
        pid=int(info.get("pid", 0)),
        cpus=list(info.get("cpus") or []),
        backend=BackendUsage(**info["backend"]),
        load_ms=float(info.get("load_ms", 0.0)),
        requests=int(mask.sum()),
        busy_s=busy_s,
        utilisation=busy_s / result.wall_s if result.wall_s > 0 else 0.0,
        latency_ms=summarize_ms(service.tolist()) if service.size else None,
        queue_ms=summarize_ms(wait.tolist()) if wait.size else None,
        peak_rss_mb=stats.get("peak_rss_mb"),
    )


def _rps(result: StreamResult) -> float:
    return result.requests / result.wall_s if result.wall_s > 0 else 0.0


# ------------------------------------------------------------------------------ run


def run_parallel(model: LoadedModel, feeds: Feeds, args: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``run`` operation over requests: on shards, or one by one here."""
    shards = args.get("shards")
    total = _rows(feeds)
    batch = int(args.get("request_batch") or 0) or _default_batch(model, total, shards)
    full = total // batch
    requests = split_rows(feeds, batch) if full else []
    t0 = time.perf_counter_ns()
    parts: List[List[np.ndarray]] = []
    info: Dict[str, Any] = {"requests": len(requests) + (1 if total % batch else 0)}
    if requests:
        validate_feeds(model.session.signature, requests[0])
    if requests and shards is not None:
        pool_outputs, pool_info = _run_on_shards(model, requests, int(shards))
        parts.append(pool_outputs)
        info.update(pool_info)
    elif requests:
        parts.extend(model.run(r) for r in requests)
    if total % batch:
        parts.append(model.run({k: v[full * batch :] for k, v in feeds.items()}))
    outputs = [np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts)]
    latency_ms = (time.perf_counter_ns() - t0) / 1e6
    names = [s.name for s in model.session.signature.outputs]
    return {
        "outputs": dict(zip(names, outputs)),
        "latency_ms": latency_ms,
        "calls": info["requests"],
        "parallel": info,
    }


def _run_on_shards(
    model: LoadedModel, requests: List[Feeds], shards: int
) -> Tuple[List[np.ndarray], Dict[str, Any]]:
    with ShardPool(
        model.info.path,
        requests[0],
        shards,
        backend=model.backend.name,
        options=session_options(model),
        warmup=1,
    ) as pool:
        areas = {a.name: a for a in pool.slots.layout.areas} if pool.slots else {}
        names = [s.name for s in model.session.signature.outputs]
        shapes = [areas[pool.outputs[n]].shape for n in names]
        outs = [
            np.empty((len(requests) * s[0], *s[1:]), dtype=areas[pool.outputs[n]].dtype)
            for n, s in zip(names, shapes)
        ]

        def place(i: int, views: Mapping[str, np.ndarray]) -> None:
            for out, name, shape in zip(outs, names, shapes):
                out[i * shape[0] : (i + 1) * shape[0]] = views[pool.outputs[name]]

        result = pool.stream(requests, len(requests), sink=place)
        per_shard = np.bincount(result.route, minlength=pool.shards).tolist()
    return outs, {"shards": pool.shards, "per_shard": per_shard, "wall_s": result.wall_s}


def _rows(feeds: Mapping[str, np.ndarray]) -> int:
    rows = {int(v.shape[0]) if v.ndim else 0 for v in feeds.values()}
    if len(rows) != 1 or not min(rows):
        raise InputError(f"sharded inputs must share a leading (sample) dim, got {sorted(rows)}")
    return rows.pop()


def _default_batch(model: LoadedModel, total: int, shards: Any) -> int:
    first = model.session.signature.inputs[0].shape if model.session.signature.inputs else ()
    if first and isinstance(first[0], int) and first[0] > 0:
        return first[0]
    workers = int(shards or 0) or len(usable_cpus())
    return max(1, -(-total // (workers * 4)))
