"""What shards and pipelines share: a started worker group, its slots, a stream method.

Start-up order (see :mod:`.worker` for the worker's side): spawn and load, probe with a
template request (which fixes every tensor's per-request shape), create the segment,
let every worker attach, unlink the segment's name. After that nothing can leak.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

import numpy as np

from ..errors import EdgeshipError, InputError
from .group import STARTUP_TIMEOUT_S, WorkerGroup, WorkerSpec
from .shm import Area, SharedSlots, SlotLayout
from .stream import Sink, StreamResult, run_stream

Feeds = Dict[str, np.ndarray]
R = TypeVar("R", bound="ParallelRunner")
Wiring = Tuple[Dict[str, str], List[Tuple[int, str]]]
"""Per worker: the feeds it reads (input name → area) and outputs it writes (index, area)."""

DEFAULT_DEPTH = 32
"""Requests in flight per worker (shards) or per stage (pipelines). Workers return finished
requests in batches of half that: deep enough that the parent's per-message cost is small
against sub-millisecond models; the queueing it adds shows in the report's ``queue_ms``."""

MAX_SEGMENT_BYTES = 256 << 20
"""Slots are fewer than ``depth`` asks for when they would need more shared memory."""


class ParallelRunner:
    """A worker group and its shared slots. Use as a context manager, or :meth:`close`."""

    mode = ""

    def __init__(self) -> None:
        self.group: Optional[WorkerGroup] = None
        self.slots: Optional[SharedSlots] = None
        self.input_areas: Tuple[Area, ...] = ()
        self.outputs: Dict[str, str] = {}
        """The final outputs, in order: output name → the slot area that holds it."""
        self.refill = 1
        self._closed = False

    # -- start-up ------------------------------------------------------------

    def _start(self, specs: Sequence[WorkerSpec], chain: bool, flush: int) -> WorkerGroup:
        self.group = WorkerGroup(specs, chain=chain, flush=flush)
        return self.group

    def _probe(self, k: int, feeds: Mapping[str, np.ndarray], warmup: int) -> Feeds:
        group = self._group()
        group.tell(group.workers[k], ("probe", dict(feeds), warmup))
        return dict(group.expect(group.workers[k], "probed", STARTUP_TIMEOUT_S))

    def _attach(
        self, areas: Sequence[Area], slots: int, stamps: int, wiring: Sequence[Wiring]
    ) -> None:
        group = self._group()
        self.slots = SharedSlots.create(SlotLayout(areas, slots, stamps))
        try:
            layout = self.slots.layout.to_wire()
            for worker, (reads, writes) in zip(group.workers, wiring):
                group.tell(worker, ("attach", self.slots.name, layout, reads, writes))
            for worker in group.workers:
                group.expect(worker, "attached", STARTUP_TIMEOUT_S)
        finally:
            self.slots.unlink()  # every worker holds a mapping now (or failed): drop the name

    def _group(self) -> WorkerGroup:
        if self.group is None or self._closed:
            raise EdgeshipError(f"this {self.mode or 'parallel'} runner is closed")
        return self.group

    # -- running -------------------------------------------------------------

    def stream(
        self,
        requests: Sequence[Mapping[str, np.ndarray]],
        count: int,
        *,
        min_seconds: float = 0.0,
        sink: Optional[Sink] = None,
    ) -> StreamResult:
        """Run ``count`` requests, cycling through ``requests``, on every worker; results
        go to ``sink(i, views)`` (see :func:`.stream.run_stream`) and timings come back."""
        return self._stream(self._group().routes, requests, count, min_seconds, sink)

    def check_request(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`InputError` unless ``feeds`` fit the slots (names, dtypes, shapes)."""
        expected = {a.name: a for a in self.input_areas}
        if set(feeds) != set(expected):
            raise InputError(
                f"a request has inputs {sorted(feeds)}, the stream expects {sorted(expected)}"
            )
        for name, value in feeds.items():
            area = expected[name]
            if value.dtype.name != area.dtype or tuple(value.shape) != area.shape:
                raise InputError(
                    f"input {name!r}: {value.dtype.name}{list(value.shape)} differs from the "
                    f"stream's {area.dtype}{list(area.shape)}; every request must have one shape",
                    input=name,
                )

    def _stream(
        self,
        routes: Sequence[Any],
        requests: Sequence[Mapping[str, np.ndarray]],
        count: int,
        min_seconds: float,
        sink: Optional[Sink],
    ) -> StreamResult:
        group = self._group()
        assert self.slots is not None
        for feeds in requests:
            self.check_request(feeds)
        try:
            return run_stream(
                group,
                self.slots,
                routes,
                requests,
                count,
                min_seconds=min_seconds,
                refill=self.refill,
                sink=sink,
            )
        except BaseException:
            self._abort()
            raise

    def worker_info(self) -> List[Dict[str, Any]]:
        """Per worker: label, pid, cores, backend, load time; after close, its final stats."""
        group = self._group() if not self._closed else self.group
        assert group is not None
        return [
            {"label": w.label, "path": w.spec.path, **w.info, "stats": dict(w.stats)}
            for w in group.workers
        ]

    # -- end -----------------------------------------------------------------

    def _abort(self) -> None:
        if self.group is not None and not self._closed:
            self._closed = True
            self.group.close(graceful=False)
        if self.slots is not None:
            self.slots.close()

    def close(self) -> None:
        """Stop the workers (collecting their final statistics) and release the memory."""
        if self._closed:
            return
        self._closed = True
        if self.group is not None:
            try:
                self.group.finish()
            finally:
                self.group.close()
        if self.slots is not None:
            self.slots.close()

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._abort()


def fit_slots(wanted: int, areas: Sequence[Area], minimum: int) -> int:
    """``wanted`` slots, fewer if they would exceed :data:`MAX_SEGMENT_BYTES`."""
    per_slot = SlotLayout.slot_bytes_for(areas)
    return max(minimum, min(wanted, MAX_SEGMENT_BYTES // per_slot))
