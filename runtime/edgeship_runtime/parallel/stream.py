"""The parent's dispatch loop: a stream of requests through slots, results back in order.

Request ``i`` is ``requests[i % len(requests)]`` (a list of feeds, each one request). The
loop keeps every route supplied: whenever a route has room for ``refill`` more requests
(or none in flight) it copies that many requests into free slots, stamps the hand-over
time and sends their slot numbers in one message. Finished slot numbers come back in
batches; each result is passed to ``sink(i, views)`` (which must copy what it keeps)
before its slot is reused, so results land by request index, in order, whichever worker
finished first.

Time stamps come from ``time.monotonic_ns``, a system-wide clock, so the parent's and the
workers' stamps of one request can be subtracted.
"""

from __future__ import annotations

import selectors
import time
from array import array
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import InferenceError
from .group import Route, WorkerGroup
from .shm import SharedSlots

Sink = Callable[[int, Mapping[str, np.ndarray]], None]
DEFAULT_STALL_TIMEOUT_S = 300.0


@dataclass
class StreamResult:
    """What happened to each request, by request index.

    ``stamps[i]``: ``[handed over, start₀, end₀, start₁, end₁, ..., collected]`` in ns;
    ``route[i]``: the route (for shards: the worker) that ran request ``i``.
    """

    stamps: np.ndarray
    route: np.ndarray
    started_ns: int
    ended_ns: int

    @property
    def requests(self) -> int:
        return int(self.stamps.shape[0])

    @property
    def wall_s(self) -> float:
        return (self.ended_ns - self.started_ns) / 1e9


class _Book:
    """Slots, who holds them, and what came back."""

    def __init__(self, slots: int, routes: int) -> None:
        self.free = list(range(slots - 1, -1, -1))
        self.request = np.zeros(slots, dtype=np.int64)
        self.outstanding = [0] * routes
        self.rows: List[np.ndarray] = []
        self.order: List[np.ndarray] = []
        self.batches: List[Tuple[int, int, int]] = []  # (route, collected ns, count)
        self.issued = 0
        self.finished = 0


def run_stream(
    group: WorkerGroup,
    slots: SharedSlots,
    routes: Sequence[Route],
    requests: Sequence[Mapping[str, np.ndarray]],
    count: int,
    *,
    min_seconds: float = 0.0,
    refill: int = 1,
    sink: Optional[Sink] = None,
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
) -> StreamResult:
    """Run ``count`` requests (and on until ``min_seconds`` have passed) over ``routes``."""
    if not requests or count < 1:
        raise ValueError("a stream needs at least one request")
    book = _Book(slots.layout.slots, len(routes))
    clock = time.monotonic_ns
    started = clock()
    deadline = started + int(min_seconds * 1e9)

    feeds = [list(r.items()) for r in requests]

    def wanted() -> int:
        """How many more requests to hand over now."""
        if book.issued < count:
            return count - book.issued
        return len(book.free) if clock() < deadline else 0

    with selectors.DefaultSelector() as selector:
        for r, route in enumerate(routes):
            selector.register(route.recv, selectors.EVENT_READ, r)
        for obj in group.watch_list():
            selector.register(obj, selectors.EVENT_READ, None)
        while True:
            for r, route in enumerate(routes):
                try:
                    _dispatch(book, r, route, slots, feeds, refill, wanted())
                except OSError:  # its reader is gone: the worker died
                    raise _dead_route(group) from None
            if book.finished == book.issued and not wanted():
                break
            ready = selector.select(stall_timeout_s)
            if not ready:
                raise InferenceError(f"no request finished within {stall_timeout_s:g} s")
            for key, _ in ready:
                if key.data is None:
                    group.raise_failure([key.fileobj])
                    continue
                try:
                    data = key.fileobj.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    raise _dead_route(group) from None
                _collect(book, key.data, data, slots, sink, clock())
    ended = clock()
    return _result(book, started, ended)


def _result(book: _Book, started: int, ended: int) -> StreamResult:
    routes, collected, counts = (np.asarray(c, dtype=np.int64) for c in zip(*book.batches))
    stamps = np.concatenate(
        [np.concatenate(book.rows), np.repeat(collected, counts)[:, None]], axis=1
    )
    order = np.argsort(np.concatenate(book.order), kind="stable")
    return StreamResult(
        stamps=stamps[order],
        route=np.repeat(routes, counts)[order],
        started_ns=started,
        ended_ns=ended,
    )


def _dispatch(
    book: _Book,
    r: int,
    route: Route,
    slots: SharedSlots,
    requests: Sequence[Sequence[Tuple[str, np.ndarray]]],
    refill: int,
    take: int,
) -> None:
    """Hand up to ``take`` more requests to route ``r`` if it has room for ``refill``."""
    room = min(route.capacity - book.outstanding[r], len(book.free), take)
    if room <= 0 or (book.outstanding[r] and room < min(refill, take)):
        return
    batch = book.free[-room:]
    del book.free[-room:]
    views, n, first = slots.all_views, len(requests), book.issued
    for i, slot in enumerate(batch, first):
        slot_views = views[slot]
        for name, value in requests[i % n]:
            np.copyto(slot_views[name], value)
    book.issued += room
    index = np.asarray(batch, dtype=np.intp)
    book.request[index] = np.arange(first, book.issued)
    slots.stamps[index, 0] = time.monotonic_ns()
    route.send.send_bytes(array("i", batch))
    book.outstanding[r] += room


def _collect(
    book: _Book, r: int, data: bytes, slots: SharedSlots, sink: Optional[Sink], now: int
) -> None:
    done = np.frombuffer(data, dtype=np.int32)
    requests = book.request[done]
    book.rows.append(slots.stamps[done])
    book.order.append(requests)
    book.batches.append((r, now, len(done)))
    freed = done.tolist()
    if sink is not None:
        for slot, i in zip(freed, requests.tolist()):
            sink(i, slots.views(slot))
    book.free.extend(freed)
    book.outstanding[r] -= len(freed)
    book.finished += len(freed)


def _dead_route(group: WorkerGroup) -> Exception:
    """The error for a route whose pipe closed: one of the workers is gone."""
    try:
        group.raise_failure(())
    except Exception as exc:
        return exc
    return InferenceError("a worker's pipe closed")  # pragma: no cover (raise_failure raises)
