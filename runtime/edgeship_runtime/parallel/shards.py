"""Data-parallel shards: N worker processes, each with its own session on its own cores.

A stream of requests (or a large batch cut into requests) is spread over the shards
through shared memory; results come back in request order::

    with ShardPool("model.onnx", template, shards=2) as pool:
        result = pool.stream(requests, count=2000)      # timings per request
        outputs = pool.map(requests)                      # outputs, in order

Every shard gets ``depth`` requests in flight; a shard returns finished requests in
batches of ``depth // 2`` (or whenever it runs dry), and the parent refills it with as
many, so the parent sends one small message per half-queue instead of one per request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..backends import SessionOptions
from ..errors import UsageError
from .affinity import plan_cpus, suggest_shards, usable_cpus
from .group import WorkerSpec
from .runner import DEFAULT_DEPTH, Feeds, ParallelRunner, fit_slots
from .shm import Area
from .stream import Sink, StreamResult

DEFAULT_WARMUP = 10
OUTPUT_AREA = "out:"
"""Output areas are named apart from inputs (a graph may output one of its inputs)."""


class ShardPool(ParallelRunner):
    """``shards`` workers running the model at ``path`` on requests shaped like ``template``.

    ``shards=0`` picks :func:`~.affinity.suggest_shards` for the usable cores, the
    session's ``threads`` and ``providers``. Each shard gets its own cores (see
    :func:`~.affinity.plan_cpus`) and, when ``options.threads`` is 0, one intra-op thread
    per core it owns.
    """

    mode = "shards"

    def __init__(
        self,
        path: str,
        template: Mapping[str, np.ndarray],
        shards: int = 0,
        *,
        backend: Optional[str] = None,
        options: Optional[SessionOptions] = None,
        cpus: Optional[Sequence[int]] = None,
        depth: int = DEFAULT_DEPTH,
        warmup: int = DEFAULT_WARMUP,
    ) -> None:
        super().__init__()
        options = options or SessionOptions()
        cores = list(cpus) if cpus is not None else usable_cpus()
        if shards < 0:
            raise UsageError(f"shards must be 0 (automatic) or positive, got {shards}")
        if depth < 1:
            raise UsageError(f"depth must be at least 1, got {depth}")
        n = shards or suggest_shards(len(cores), options.threads, options.providers)
        plan = plan_cpus(n, cores)
        specs = [
            WorkerSpec(path, f"shard {k}", backend, _with_threads(options, len(plan[k])), plan[k])
            for k in range(n)
        ]
        self.input_areas = tuple(Area.of(name, value) for name, value in template.items())
        flush = max(1, depth // 2)
        self.refill = flush
        group = self._start(specs, chain=False, flush=flush)
        try:
            outputs = self._probe_all(template, warmup)
            self.outputs = {name: OUTPUT_AREA + name for name in outputs}
            areas = [
                *self.input_areas,
                *(Area.of(self.outputs[name], value) for name, value in outputs.items()),
            ]
            depth = fit_slots(depth * n, areas, n) // n
            reads = {a.name: a.name for a in self.input_areas}
            writes = [(i, area) for i, area in enumerate(self.outputs.values())]
            self._attach(areas, depth * n, 3, [(reads, writes)] * n)
            for route in group.routes:
                route.capacity = depth
            self.refill = max(1, min(self.refill, depth // 2))
        except BaseException:
            self._abort()
            raise
        self.shards = n
        self.depth = depth

    def _probe_all(self, template: Mapping[str, np.ndarray], warmup: int) -> Feeds:
        """Warm every shard up at once; the first shard's outputs fix the output slots."""
        group = self._group()
        for worker in group.workers:
            group.tell(worker, ("probe", dict(template), warmup))
        results = [group.expect(w, "probed", 300.0) for w in group.workers]
        return dict(results[0])

    def stream(
        self,
        requests: Sequence[Mapping[str, np.ndarray]],
        count: int,
        *,
        min_seconds: float = 0.0,
        sink: Optional[Sink] = None,
        shards: Optional[Sequence[int]] = None,
    ) -> StreamResult:
        """Run ``count`` requests (cycling through ``requests``) on ``shards`` (default: all)."""
        group = self._group()
        chosen = list(range(len(group.routes))) if shards is None else list(shards)
        if not chosen or any(not 0 <= k < len(group.routes) for k in chosen):
            raise UsageError(f"shards {chosen} out of range for a pool of {len(group.routes)}")
        routes = [group.routes[k] for k in chosen]
        result = self._stream(routes, requests, count, min_seconds, sink)
        result.route = np.asarray(chosen, dtype=np.int64)[result.route]
        return result

    def map(self, requests: Sequence[Mapping[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
        """The outputs of every request, in order (copied out of the slots)."""
        results: List[Dict[str, np.ndarray]] = [{} for _ in requests]

        def keep(i: int, views: Mapping[str, np.ndarray]) -> None:
            results[i] = {name: views[area].copy() for name, area in self.outputs.items()}

        self.stream(requests, len(requests), sink=keep)
        return results


def _with_threads(options: SessionOptions, cores: int) -> SessionOptions:
    """The session options of one shard: its own cores' worth of threads unless fixed."""
    if options.threads:
        return options
    return replace(options, threads=max(1, cores))
